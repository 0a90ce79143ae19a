/**
 * Replication lag as work received or announced but not yet confirmed. pgoutput sends a
 * transaction only after its commit, and its BEGIN already carries the commit's LSN (final LSN)
 * and time, so from the BEGIN on the lag counts the whole transaction, not only once its commit
 * message arrives: during a transaction of a million rows that ClickHouse is slow to take, lag in
 * seconds grows from its commit time and lag in bytes covers it up to its commit.
 *
 * - seconds: now - the commit time of the oldest transaction announced (BEGIN received) and not
 *   confirmed; 0 when there is none;
 * - bytes: the furthest position received or announced - the confirmed position; 0 when nothing
 *   is ahead.
 */
import { type Lsn, parseLsn } from '../lsn.ts';
import type { StreamItem } from '../source/stream.ts';

interface Announced {
  finalLsn: Lsn;
  commitMs: number;
}

export class LagTracker {
  /** Announced transactions in LSN order; those at or below the confirmed position are dropped. */
  private pending: Announced[] = [];
  private furthest: Lsn = 0n;

  /** What the stream delivered: its position, and for a BEGIN the transaction it announces. */
  received(item: StreamItem): void {
    if (item.kind !== 'message') return;
    this.reached(item.lsn);
    const { message } = item;
    // commitTime: µs since the epoch
    if (message.tag === 'begin') this.announced(parseLsn(message.commitLsn as string), Number((message.commitTime as bigint) / 1000n));
  }

  /** A BEGIN: the transaction commits at `finalLsn` at `commitMs`. A replayed one is not added twice. */
  announced(finalLsn: Lsn, commitMs: number): void {
    this.reached(finalLsn);
    const last = this.pending.at(-1);
    if (last && last.finalLsn >= finalLsn) return;
    this.pending.push({ finalLsn, commitMs });
  }

  /** A message or keepalive at `lsn` arrived. */
  reached(lsn: Lsn): void {
    if (lsn > this.furthest) this.furthest = lsn;
  }

  /** `confirmed` was confirmed to Postgres: forget the transactions it covers (whether or not
   * anyone reads the lag, so a long run does not keep every transaction). */
  confirmed(confirmed: Lsn): void {
    // A transaction is confirmed once the confirmed position passed its commit record.
    let drop = 0;
    while (drop < this.pending.length && (this.pending[drop] as Announced).finalLsn < confirmed) drop += 1;
    if (drop > 0) this.pending = this.pending.slice(drop);
  }

  /** Transactions announced and not confirmed yet. */
  get waiting(): number {
    return this.pending.length;
  }

  /** The lag with `confirmed` confirmed to Postgres (the end of every transaction before it). */
  lag(confirmed: Lsn, now: number = Date.now()): { seconds: number; bytes: number } {
    this.confirmed(confirmed);
    const oldest = this.pending[0];
    return {
      seconds: oldest ? Math.max(0, (now - oldest.commitMs) / 1000) : 0,
      bytes: this.furthest > confirmed ? Number(this.furthest - confirmed) : 0,
    };
  }
}
