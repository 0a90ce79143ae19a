/**
 * Which LSN may be confirmed to Postgres. Pure bookkeeping, no I/O.
 *
 * Rows get increasing sequence numbers as they are buffered; ClickHouse holds every row up to
 * `writtenSeq` (flushes complete in order). A transaction is recorded at its commit with the
 * sequence number of its last row. The LSN that may be confirmed is the commit-end LSN of the
 * latest recorded transaction whose last row is written: that transaction and every one before it
 * are entirely in ClickHouse. Rows of a transaction whose commit has not arrived yet (pieces of a
 * large one) may be written early but never make anything confirmable.
 *
 * When nothing is pending at all, the server's WAL end from a keepalive may be confirmed: every
 * transaction committed before it was already received and written, and the rest of that WAL
 * (other tables, other databases) is nothing runs-cdc replicates. This keeps an idle slot from
 * holding WAL.
 */
import type { Lsn } from '../lsn.ts';

interface PendingCommit {
  endLsn: Lsn;
  lastSeq: number;
}

export class AckTracker {
  private readonly pending: PendingCommit[] = [];
  private writtenSeq = 0;
  private confirmed: Lsn;

  constructor(startLsn: Lsn) {
    this.confirmed = startLsn;
  }

  get confirmedLsn(): Lsn {
    return this.confirmed;
  }

  get pendingCommits(): number {
    return this.pending.length;
  }

  /**
   * A transaction's commit arrived; `lastSeq` is the sequence number of its last buffered row.
   * Returns the new LSN to confirm if the transaction is already written (or had no rows).
   */
  commit(endLsn: Lsn, lastSeq: number): Lsn | undefined {
    this.pending.push({ endLsn, lastSeq });
    return this.advance();
  }

  /** Every row up to `seq` is in ClickHouse. Returns the new LSN to confirm, if it moved. */
  written(seq: number): Lsn | undefined {
    if (seq > this.writtenSeq) this.writtenSeq = seq;
    return this.advance();
  }

  private advance(): Lsn | undefined {
    let moved = false;
    while (this.pending.length > 0 && (this.pending[0] as PendingCommit).lastSeq <= this.writtenSeq) {
      const done = this.pending.shift() as PendingCommit;
      if (done.endLsn > this.confirmed) {
        this.confirmed = done.endLsn;
        moved = true;
      }
    }
    return moved ? this.confirmed : undefined;
  }

  /**
   * A keepalive reported the server's WAL end. `idle` must be true only when no transaction is
   * open, no row is buffered or being written, and no received item is still unprocessed.
   * Returns the new LSN to confirm, if it moved.
   */
  keepalive(walEnd: Lsn, idle: boolean): Lsn | undefined {
    if (!idle || this.pending.length > 0 || walEnd <= this.confirmed) return undefined;
    this.confirmed = walEnd;
    return walEnd;
  }
}
