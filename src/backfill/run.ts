/**
 * One run of a backfill job (a new job or a resumed one): fix the version (see version-rule.ts),
 * open one reader per pending range, copy every range page by page through the sink, checkpoint,
 * and end with one status.
 *
 * Each worker owns one sub-range and one Postgres connection, and reads the next page while it
 * writes the current one, so memory holds at most two pages per worker. The first failure stops
 * the others; every range's checkpoint then says exactly what reached ClickHouse.
 */
import { randomBytes } from 'node:crypto';
import { RateLimiter } from 'limiter';
import type pg from 'pg';
import type { BackfillTuning } from '../config.ts';
import { RunsCdcError } from '../errors.ts';
import { failpoint } from '../failpoints.ts';
import type { Logger } from '../logger.ts';
import type { SourceTable } from '../schema/columns.ts';
import type { RoutedEncodedRow } from '../sink/targets.ts';
import type { Tuple } from '../transform/row.ts';
import type { BackfillStatus, CheckpointStore, JobRecord, RangeCheckpoint } from './checkpoints.ts';
import { type Cursor, formatCursor, parseCursor } from './cursor.ts';
import { type ProgressReporter, silentProgress, type TableProgress } from './progress.ts';
import { connectReader, encodedRowsOfPage, readPage } from './source.ts';
import { exportSnapshot, importSnapshot, requireReplicationSlot } from './version-rule.ts';

export interface BackfillContext {
  databaseUrl: string;
  slot: string;
  publication: string;
  tuning: BackfillTuning;
  /** Where rows go: one table, or the targets of --routes (anything with the sink's write). */
  runsTable: { writeEncoded(rows: readonly RoutedEncodedRow[], signal?: AbortSignal): Promise<void> };
  store: CheckpointStore;
  log: Logger;
  progress?: ProgressReporter;
  /** Abort to stop after the current page (the job ends FAILURE, resumable). */
  signal?: AbortSignal;
}

export interface BackfillResult {
  jobId: string;
  status: BackfillStatus;
  message: string;
  /** Rows copied by this run. */
  rowsCopied: number;
  /** Rows copied by the job, earlier runs included, per table. */
  tables: TableProgress[];
  seconds: number;
  /** `_version` of the rows this run wrote. */
  version: bigint;
  /** Time spent per step, summed over workers: where a slow backfill spends it. */
  phases: PhaseTimes;
  /** False when it stopped before reading anything (no slot, no snapshot): could not run. */
  started?: boolean;
}

/** A page read from Postgres, and the row limit it was asked for (fewer rows: the range is done). */
interface PageRead {
  page: Tuple[];
  limit: number;
}

export interface PhaseTimes {
  readMs: number;
  transformMs: number;
  writeMs: number;
  checkpointMs: number;
}

/** Per-table figures for progress and the result. */
export function tableFigures(ranges: readonly RangeCheckpoint[], copiedThisRun: number, elapsedSeconds: number): TableProgress[] {
  const tables = [...new Set(ranges.map((r) => r.table))];
  return tables.map((table) => {
    const own = ranges.filter((r) => r.table === table);
    const copied = own.reduce((n, r) => n + r.rowsCopied, 0);
    const estimated = own.reduce((n, r) => n + (r.done ? r.rowsCopied : Math.max(r.estimated, r.rowsCopied)), 0);
    const rowsPerSecond = elapsedSeconds > 0 ? copiedThisRun / elapsedSeconds : 0;
    const etaSeconds = rowsPerSecond > 0 ? Math.max(0, estimated - copied) / rowsPerSecond : null;
    return { table, copied, estimated, rowsPerSecond, etaSeconds };
  });
}

export interface BackfillRunOptions {
  job: JobRecord;
  ranges: RangeCheckpoint[];
  createSlot: boolean;
  /** A new job: its ranges are saved before it starts. */
  isNew: boolean;
}

export class BackfillRun {
  private readonly progress: ProgressReporter;
  private readonly started = performance.now();
  /** Aborted by the first failure (or the caller's signal): every worker stops after its page. */
  private readonly stop = new AbortController();
  private readonly onOuterAbort = () => this.stop.abort(new RunsCdcError('interrupted'));
  private readonly pending: RangeCheckpoint[];
  private readonly readers: pg.Client[] = [];
  private readonly copiedByTable = new Map<SourceTable, number>();
  private readonly phases: PhaseTimes = { readMs: 0, transformMs: 0, writeMs: 0, checkpointMs: 0 };
  private copiedThisRun = 0;
  private version = 0n;
  private reachedMaxRows = false;
  /** Whether the job's end is recorded (not when it failed before reading anything). */
  private record = true;
  /** The shared rate limit of all workers, if one is set. */
  private readonly limiter: RateLimiter | undefined;
  /** Rows each table may still copy (--max-rows), shared by its workers. */
  private readonly budget: Map<SourceTable, number>;
  /** Rows a page asks for (before --max-rows's budget). */
  private readonly pageRows: number;

  constructor(
    private readonly sql: pg.ClientBase,
    private readonly context: BackfillContext,
    private readonly options: BackfillRunOptions,
  ) {
    this.progress = context.progress ?? silentProgress;
    this.pending = options.ranges.filter((r) => !r.done);
    const { rateLimit, maxRows, chunkRows } = context.tuning;
    this.limiter = rateLimit > 0 ? new RateLimiter({ tokensPerInterval: rateLimit, interval: 'second' }) : undefined;
    // A page never asks for more than one second of the rate limit (the bucket's size).
    this.pageRows = this.limiter ? Math.min(chunkRows, rateLimit) : chunkRows;
    // --max-rows counts the job's rows per table, earlier runs' included.
    this.budget = new Map(
      options.job.params.tables.map((t) => [t, maxRows > 0 ? maxRows - copiedBefore(options.ranges, t) : Number.POSITIVE_INFINITY]),
    );
  }

  async run(): Promise<BackfillResult> {
    this.context.signal?.addEventListener('abort', this.onOuterAbort, { once: true });
    try {
      await this.prepare();
    } catch (error) {
      // Nothing was read: no job is recorded, so there is nothing to resume either.
      this.record = false;
      return this.finish('FAILURE', (error as Error).message);
    }
    this.progress.start(tableFigures(this.options.ranges, 0, 0));
    const outcomes = await Promise.allSettled(this.pending.map((range, i) => this.copyRange(range, this.readers[i] as pg.Client)));
    const failure = this.stop.signal.aborted ? (this.stop.signal.reason as Error) : undefined;
    if (failure || outcomes.some((o) => o.status === 'rejected')) {
      const reason = failure ?? (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
      const { jobId } = this.options.job;
      const message = `${(reason as Error).message}; ClickHouse holds every page up to each range's checkpoint: continue with runs-cdc backfill --resume ${jobId}`;
      return this.finish('FAILURE', message);
    }
    const total = this.options.ranges.reduce((n, r) => n + r.rowsCopied, 0);
    if (total === 0) return this.finish('EMPTY', 'no rows matched');
    const { maxRows } = this.context.tuning;
    const capped = this.reachedMaxRows ? ` (stopped at --max-rows ${maxRows} per table; the rest was not copied)` : '';
    return this.finish('SUCCESS', `${total} rows copied${capped}`);
  }

  /** Fix the version before the first read (in default mode the slot must already exist), open the readers, record the job. */
  private async prepare(): Promise<void> {
    const { job, ranges, isNew, createSlot } = this.options;
    const { context } = this;
    let snapshot: Awaited<ReturnType<typeof exportSnapshot>> | undefined;
    if (job.params.mode === 'repair') {
      snapshot = await exportSnapshot(context.databaseUrl, `runs_cdc_repair_${randomBytes(4).toString('hex')}`);
      this.version = snapshot.version;
    } else {
      this.version = await requireReplicationSlot(
        this.sql,
        { slot: context.slot, publication: context.publication, createSlot },
        context.log,
      );
    }
    try {
      for (const _ of this.pending) {
        const reader = await connectReader(context.databaseUrl);
        this.readers.push(reader);
        if (snapshot) await importSnapshot(reader, snapshot.name);
      }
    } finally {
      await snapshot?.close(); // every reader holds the snapshot now; the temporary slot can go
    }
    // Ranges before the job row: a listed job always has its ranges to resume from.
    if (isNew) await context.store.saveCheckpoints(job.jobId, ranges);
    await context.store.saveJob({ ...job, revision: job.revision + 1, status: 'RUNNING', message: '' });
    context.log.info(
      { jobId: job.jobId, mode: job.params.mode, version: this.version.toString(), ranges: this.pending.length },
      `backfill ${job.jobId} started; if it stops, continue with: runs-cdc backfill --resume ${job.jobId}`,
    );
  }

  private async copyRange(range: RangeCheckpoint, reader: pg.Client): Promise<void> {
    const { tuning, log, store, runsTable } = this.context;
    const { jobId } = this.options.job;
    const signal = this.stop.signal;
    let unsaved = 0;
    const checkpoint = async () => {
      range.seq += 1;
      await this.timed('checkpointMs', () => store.saveCheckpoints(jobId, [range], signal));
      unsaved = 0;
      this.progress.checkpoint(this.figures(range.table));
    };
    // The next page is read while the current one is transformed and inserted: reading waits on
    // Postgres and inserting on ClickHouse, so each fills the other's wait. The read position runs
    // one page ahead of range.cursor, which only moves past a page once it is in ClickHouse.
    let reading: Promise<PageRead | null> | undefined = this.readNext(range, reader, range.cursor ? parseCursor(range.cursor) : null);
    try {
      // `reading` is set exactly while the range is not done: a short page is its last.
      while (reading) {
        signal.throwIfAborted();
        const read = await reading;
        reading = undefined;
        if (!read) {
          this.reachedMaxRows = true;
          break;
        }
        const { page, limit } = read;
        const last = page.at(-1);
        if (!last) {
          range.done = true;
          break;
        }
        const after = { createdAt: String(last.createdAt), id: String(last.id) };
        const full = page.length === limit;
        if (full) reading = this.readNext(range, reader, after);
        const rows = await this.timed('transformMs', () => encodedRowsOfPage(page, range.table, this.version, log));
        await failpoint('backfill.page-read', range.table, page);
        signal.throwIfAborted();
        await this.timed('writeMs', () => runsTable.writeEncoded(rows, signal));
        // Only now, with the page in ClickHouse, does the cursor move past it.
        range.cursor = formatCursor(after);
        range.rowsCopied += page.length;
        range.done = !full;
        this.copiedThisRun += page.length;
        this.copiedByTable.set(range.table, (this.copiedByTable.get(range.table) ?? 0) + page.length);
        this.progress.update(this.figures(range.table));
        unsaved += 1;
        if (unsaved >= tuning.checkpointEvery && !range.done) await checkpoint();
      }
      await checkpoint();
    } catch (error) {
      // Record what did reach ClickHouse (the cursor never covers a page that failed).
      if (unsaved > 0) await store.saveCheckpoints(jobId, [{ ...range, seq: range.seq + 1 }]).catch(() => {});
      this.stop.abort(error);
      throw error;
    }
  }

  /** The range's next page after `cursor`, or null when the table's --max-rows budget is spent.
   * Its failure is handled where it is awaited; until then it must not count as unhandled. */
  private readNext(range: RangeCheckpoint, reader: pg.Client, cursor: Cursor | null): Promise<PageRead | null> {
    const read = (async () => {
      const limit = Math.min(this.pageRows, this.budget.get(range.table) ?? 0);
      if (limit <= 0) return null;
      this.spend(range.table, limit);
      await this.limiter?.removeTokens(limit);
      const page = await this.timed('readMs', () => readPage(reader, range.table, range, cursor, limit));
      this.spend(range.table, page.length - limit);
      await failpoint('backfill.page-fetched', range.table, page.length);
      return { page, limit };
    })();
    read.catch(() => {});
    return read;
  }

  private spend(table: SourceTable, rows: number): void {
    this.budget.set(table, (this.budget.get(table) ?? 0) - rows);
  }

  private async timed<T>(phase: keyof PhaseTimes, step: () => Promise<T> | T): Promise<T> {
    const begin = performance.now();
    try {
      return await step();
    } finally {
      this.phases[phase] += performance.now() - begin;
    }
  }

  private figures(table: SourceTable): TableProgress {
    const elapsed = (performance.now() - this.started) / 1000;
    const own = tableFigures(
      this.options.ranges.filter((r) => r.table === table),
      this.copiedByTable.get(table) ?? 0,
      elapsed,
    );
    return own[0] as TableProgress;
  }

  private async finish(status: BackfillStatus, message: string): Promise<BackfillResult> {
    const { job, ranges } = this.options;
    this.context.signal?.removeEventListener('abort', this.onOuterAbort);
    this.progress.stop();
    await Promise.all(this.readers.map((r) => r.end().catch(() => {})));
    const total = ranges.reduce((n, r) => n + r.rowsCopied, 0);
    if (this.record) {
      await this.context.store
        .saveJob({ ...job, revision: job.revision + 2, status, rowsCopied: total, message })
        .catch((error: unknown) => {
          this.context.log.error({ jobId: job.jobId, err: (error as Error).message }, 'could not record the backfill status in ClickHouse');
        });
    }
    const seconds = (performance.now() - this.started) / 1000;
    return {
      jobId: job.jobId,
      status,
      message,
      rowsCopied: this.copiedThisRun,
      tables: tableFigures(ranges, this.copiedThisRun, seconds),
      seconds,
      version: this.version,
      phases: this.phases,
      started: this.record,
    };
  }
}

/** Rows a job had copied from `table` before this run. */
function copiedBefore(ranges: readonly RangeCheckpoint[], table: SourceTable): number {
  return ranges.filter((r) => r.table === table).reduce((n, r) => n + r.rowsCopied, 0);
}
