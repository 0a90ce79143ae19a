/**
 * Buffers transformed rows and flushes them to ClickHouse in order, one flush at a time.
 *
 * A flush starts when the buffer reaches `batchRows` rows or `batchBytes` bytes, or when its
 * oldest row is `flushIntervalMs` old. Each flush writes at most `batchRows` rows, split into
 * groups by target; groups are inserted one after another (or concurrently with `parallel`).
 * Memory is bounded: `waitForRoom` holds the reader while buffered + in-flight rows or bytes are at
 * the limit, and the high-water marks record the most ever held, so tests can check the bound.
 */
import PQueue from 'p-queue';
import { CRASH } from '../failpoints.ts';
import { groupBy } from '../objects.ts';

export interface RowBufferLimits {
  batchRows: number;
  batchBytes: number;
  flushIntervalMs: number;
  maxBufferedRows: number;
  maxBufferedBytes: number;
  flushGroups: 'sequential' | 'parallel';
}

export interface BufferedRow<Row> {
  row: Row;
  /** What the row holds in memory, about: the limits count these. */
  bytes: number;
  /** Which ClickHouse target the row goes to (--routes). */
  target: string;
}

export type WriteGroup<Row> = (target: string, rows: Row[]) => Promise<void>;

export interface RowBufferOptions<Row> {
  limits: RowBufferLimits;
  /** Writes one target's rows of a batch; resolves when they are durable (RunsSink contract). */
  write: WriteGroup<Row>;
  /** Called after each flush with the sequence number of its last row. */
  onWritten: (seq: number) => void;
  /** Called once when a flush fails for good; nothing after the last written row is durable. */
  onFailure: (error: Error) => void;
  /** Told of every completed flush: its rows and how long it took (for metrics). */
  onFlushed?: (rows: number, seconds: number) => void;
}

export interface FlushStats {
  flushes: number;
  rowsFlushed: number;
  highWaterRows: number;
  highWaterBytes: number;
}

export class RowBuffer<Row> {
  private pending: Array<BufferedRow<Row>> = [];
  private pendingBytes = 0;
  private inFlightRows = 0;
  private inFlightBytes = 0;
  private appendedSeq = 0;
  private flushedSeq = 0;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the oldest pending row was appended (performance.now()); after a flush that left rows
   * pending, the oldest of the batch's, earlier than theirs (in a long backlog by much: its tail
   * then goes at once, as intended). */
  private oldestPendingAt = 0;
  private failure: Error | undefined;
  private roomWaiters: Array<() => void> = [];
  readonly stats: FlushStats = { flushes: 0, rowsFlushed: 0, highWaterRows: 0, highWaterBytes: 0 };

  private readonly limits: RowBufferLimits;

  constructor(private readonly options: RowBufferOptions<Row>) {
    this.limits = options.limits;
  }

  /** Sequence number of the last appended row (0 before any). */
  get lastSeq(): number {
    return this.appendedSeq;
  }

  /** Sequence number of the last row written (every row up to it is written and dropped). */
  get writtenSeq(): number {
    return this.flushedSeq;
  }

  get bufferedRows(): number {
    return this.pending.length + this.inFlightRows;
  }

  get bufferedBytes(): number {
    return this.pendingBytes + this.inFlightBytes;
  }

  /** True when nothing is buffered or being written. */
  get isEmpty(): boolean {
    return this.bufferedRows === 0 && !this.flushing;
  }

  /** Buffer a row of about `bytes` bytes, bound for `target`. */
  append(row: Row, target: string, bytes: number): number {
    if (this.pending.length === 0) this.oldestPendingAt = performance.now();
    this.pending.push({ row, bytes, target });
    this.pendingBytes += bytes;
    this.appendedSeq += 1;
    this.stats.highWaterRows = Math.max(this.stats.highWaterRows, this.bufferedRows);
    this.stats.highWaterBytes = Math.max(this.stats.highWaterBytes, this.bufferedBytes);
    if (this.pending.length >= this.limits.batchRows || this.pendingBytes >= this.limits.batchBytes) this.kick();
    else if (!this.flushing) this.armFlushTimer();
    return this.appendedSeq;
  }

  /** Whether `rows` more rows of about `bytes` fit under the memory limits now. */
  hasRoomFor(rows: number, bytes: number): boolean {
    if (this.bufferedRows === 0) return true; // one oversized change must still get through
    return this.bufferedRows + rows <= this.limits.maxBufferedRows && this.bufferedBytes + bytes <= this.limits.maxBufferedBytes;
  }

  /** Resolves when `rows`/`bytes` more fit, flushing to make room. Rejects if flushing failed. */
  async waitForRoom(rows: number, bytes: number): Promise<void> {
    while (!this.hasRoomFor(rows, bytes)) {
      if (this.failure) throw this.failure;
      this.kick();
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  /** Write everything buffered so far; resolves when it is all in ClickHouse. */
  async flushAll(): Promise<void> {
    while (this.pending.length > 0 || this.flushing) {
      if (this.failure) throw this.failure;
      this.kick();
      await this.flushing;
    }
    if (this.failure) throw this.failure;
  }

  /** Drop every buffered row and flush nothing more, as a killed process would (failpoints.ts's
   * crash). A flush already in flight may still complete. */
  [CRASH](): void {
    this.close();
    this.failure ??= new Error('abandoned');
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Stop the interval timer (shutdown); buffered rows stay until flushAll. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.flushing || this.failure || this.pending.length === 0) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
      this.wakeWaiters();
      if (this.pending.length > 0 && !this.failure) this.armFlushTimer();
    });
  }

  /**
   * Flush the pending rows flushIntervalMs after the oldest of them. After a flush that is not an
   * interval after the flush: a backlog's tail, which came while the last full batch was written,
   * goes at once rather than leaving ClickHouse idle for another interval.
   */
  private armFlushTimer(): void {
    const due = this.oldestPendingAt + this.limits.flushIntervalMs - performance.now();
    this.timer ??= setTimeout(() => this.kick(), Math.max(0, due));
  }

  /** Flush full batches back to back; a partial batch waits for its timer. */
  private async flushLoop(): Promise<void> {
    do {
      await this.flushOne();
    } while (!this.failure && (this.pending.length >= this.limits.batchRows || this.pendingBytes >= this.limits.batchBytes));
  }

  private async flushOne(): Promise<void> {
    const batch = this.takeBatchInFlight();
    const started = performance.now();
    const lastSeq = this.appendedSeq - this.pending.length;
    try {
      const groups = groupBy(
        batch,
        (item) => item.target,
        (item) => item.row,
      );
      const queue = new PQueue({ concurrency: this.limits.flushGroups === 'parallel' ? Number.POSITIVE_INFINITY : 1 });
      await queue.addAll(
        [...groups].map(
          ([target, rows]) =>
            () =>
              this.options.write(target, rows),
        ),
      );
      this.stats.flushes += 1;
      this.stats.rowsFlushed += batch.length;
      this.options.onFlushed?.(batch.length, (performance.now() - started) / 1000);
      this.inFlightRows = 0;
      this.inFlightBytes = 0;
      this.flushedSeq = lastSeq;
      this.options.onWritten(lastSeq);
      // A reader held by waitForRoom goes on now, while the next batch is written, not once the
      // loop has drained the buffer below a batch (which left ClickHouse idle while it refilled).
      this.wakeWaiters();
    } catch (error) {
      this.failure = error as Error;
      this.options.onFailure(this.failure);
    }
  }

  /** Move the next batch from pending to in flight. */
  private takeBatchInFlight(): Array<BufferedRow<Row>> {
    let rows = 0;
    let bytes = 0;
    // At least one row; then whole rows while under both batch limits.
    while (rows < this.pending.length && rows < this.limits.batchRows && (rows === 0 || bytes < this.limits.batchBytes)) {
      bytes += (this.pending[rows] as BufferedRow<Row>).bytes;
      rows += 1;
    }
    const batch = this.pending.slice(0, rows);
    this.pending = this.pending.slice(rows);
    this.pendingBytes -= bytes;
    this.inFlightRows = rows;
    this.inFlightBytes = bytes;
    return batch;
  }

  private wakeWaiters(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }
}
