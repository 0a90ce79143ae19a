/**
 * The durable buffer: rows in, batches out, "this LSN is confirmable" out. It owns the whole path
 * sequence -> commit -> confirm, so the promise "Postgres is told an LSN only when the sink holds
 * every change before it" lives in this one file:
 *
 * 1. `append` gives each row the next sequence number and buffers it (RowBuffer); batches go to
 *    `write` one flush at a time, in sequence order, and a flush counts only once every write of
 *    it resolved, which by the RunsSink contract means durable.
 * 2. `commit(endLsn)` records a transaction with the sequence number of its last appended row.
 * 3. When every row up to a recorded commit is written, its end LSN is confirmable (AckTracker):
 *    `onConfirmable` is called with it and `whenConfirmable` waiters resolve. Rows of a transaction
 *    whose commit has not arrived (pieces of a huge one) may be written early but confirm nothing.
 * 4. `keepalive(walEnd, idle)`: with nothing pending anywhere, the server's WAL end is confirmable.
 *
 * A failed write is final: `onFailure` is called once, nothing after the last confirmable LSN
 * ever becomes confirmable, and waiters for it reject when the owner calls `end`.
 */
import { CRASH } from '../failpoints.ts';
import type { Lsn } from '../lsn.ts';
import { AckTracker } from './ack-tracker.ts';
import { type FlushStats, RowBuffer, type RowBufferLimits, type WriteGroup } from './row-buffer.ts';

export interface DurableBufferOptions<Row> {
  limits: RowBufferLimits;
  /** Writes one target's rows of a batch; must resolve only once they are durable. */
  write: WriteGroup<Row>;
  /** An LSN Postgres may now be told: every change before it is durable. Called in LSN order. */
  onConfirmable: (lsn: Lsn) => void;
  /** A write failed for good (called once). */
  onFailure: (error: Error) => void;
  /** Every completed flush: its rows and how long it took (metrics). */
  onFlushed?: (rows: number, seconds: number) => void;
}

interface Waiter {
  target: Lsn;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class DurableBuffer<Row> {
  private acks = new AckTracker(0n);
  private readonly rows: RowBuffer<Row>;
  private waiters: Waiter[] = [];
  private ended: Error | undefined;

  constructor(private readonly options: DurableBufferOptions<Row>) {
    this.rows = new RowBuffer({
      limits: options.limits,
      write: options.write,
      onWritten: (seq) => this.confirmed(this.acks.written(seq)),
      onFailure: options.onFailure,
      onFlushed: options.onFlushed,
    });
  }

  /** Start confirming from `lsn` (the slot's position) with nothing pending: a fresh stream. */
  startAt(lsn: Lsn): void {
    this.acks = new AckTracker(lsn);
  }

  /** The newest confirmable LSN. */
  get confirmedLsn(): Lsn {
    return this.acks.confirmedLsn;
  }

  get stats(): FlushStats {
    return this.rows.stats;
  }

  get bufferedRows(): number {
    return this.rows.bufferedRows;
  }

  /** Sequence numbers of the last row appended, and of the last written (and no longer held). */
  get appendedSeq(): number {
    return this.rows.lastSeq;
  }

  get writtenSeq(): number {
    return this.rows.writtenSeq;
  }

  get bufferedBytes(): number {
    return this.rows.bufferedBytes;
  }

  /** Buffer a row of about `bytes` bytes bound for `target`. */
  append(row: Row, target: string, bytes: number): void {
    this.rows.append(row, target, bytes);
  }

  /** A transaction ended at `endLsn` after every row appended so far. */
  commit(endLsn: Lsn): void {
    this.confirmed(this.acks.commit(endLsn, this.rows.lastSeq));
  }

  /** The server's WAL end; `idle`: the caller holds no open transaction and no unhandled item. */
  keepalive(walEnd: Lsn, idle: boolean): void {
    this.confirmed(this.acks.keepalive(walEnd, idle && this.rows.isEmpty));
  }

  hasRoomFor(rows: number, bytes: number): boolean {
    return this.rows.hasRoomFor(rows, bytes);
  }

  /** Resolves when `rows`/`bytes` more fit, flushing to make room; rejects if a write failed. */
  waitForRoom(rows: number, bytes: number): Promise<void> {
    return this.rows.waitForRoom(rows, bytes);
  }

  /** Write everything appended so far; resolves when it is durable, rejects if a write failed. */
  flushAll(): Promise<void> {
    return this.rows.flushAll();
  }

  /** Stop the flush timer (shutdown); buffered rows stay until flushAll. */
  close(): void {
    this.rows.close();
  }

  /** Drop every buffered row unwritten and flush nothing more (failpoints.ts's crash). */
  [CRASH](): void {
    this.rows[CRASH]();
  }

  /** Resolves once `target` is confirmable; rejects with the reason if `end` comes first. */
  whenConfirmable(target: Lsn): Promise<void> {
    if (this.acks.confirmedLsn >= target) return Promise.resolve();
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  /** Nothing more will become confirmable (the owner stopped or failed): reject every waiter. */
  end(reason: Error): void {
    this.ended = reason;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(reason);
  }

  private confirmed(lsn: Lsn | undefined): void {
    if (lsn === undefined) return;
    this.options.onConfirmable(lsn);
    const reached = this.waiters.filter((w) => lsn >= w.target);
    this.waiters = this.waiters.filter((w) => lsn < w.target);
    for (const waiter of reached) waiter.resolve();
  }
}
