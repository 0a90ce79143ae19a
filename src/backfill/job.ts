/**
 * A backfill job: plan each table's ranges, fix the version (see version-rule.ts), copy every
 * range page by page through the daemon's transform and sink, checkpoint, and end with one status.
 *
 * Each worker owns one sub-range and one Postgres connection, and writes a page before it reads
 * the next, so memory holds at most one page per worker. The first failure stops the others;
 * every range's checkpoint then says exactly what reached ClickHouse.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { RateLimiter } from 'limiter';
import type pg from 'pg';
import { type BackfillTuning, backfillTuning, type Config, requireDatabaseUrl } from '../config.ts';
import { RunsCdcError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RunsTable } from '../sink/runs-table.ts';
import { SOURCE_TABLES, type SourceTable } from '../transform/columns.ts';
import type { Tuple } from '../transform/row.ts';
import { utcTimestamp } from '../utc.ts';
import {
  type BackfillMode,
  type BackfillStatus,
  CheckpointStore,
  type JobParams,
  type JobRecord,
  type RangeCheckpoint,
} from './checkpoints.ts';
import { type Cursor, formatCursor, parseCursor } from './cursor.ts';
import { type ProgressReporter, silentProgress, type TableProgress } from './progress.ts';
import { describeTuning, resumedTuning } from './resume-settings.ts';
import { connectReader, countRows, estimateRows, laterOf, readPage, rowsOfPage, splitRange } from './source.ts';
import { exportSnapshot, importSnapshot, requireReplicationSlot } from './version-rule.ts';

export interface BackfillRequest {
  tables: SourceTable[];
  /** Inclusive lower bound of "createdAt" (Postgres timestamp text). */
  from: string | null;
  /** Exclusive upper bound of "createdAt". */
  to: string | null;
  after: Cursor | null;
  mode: BackfillMode;
  exactCount: boolean;
  /** Create the publication and replication slot if missing (default mode). */
  createSlot: boolean;
}

export interface BackfillContext {
  databaseUrl: string;
  slot: string;
  publication: string;
  tuning: BackfillTuning;
  /** Where rows go: one table, or the targets of --routes (anything with RunsTable's write). */
  runsTable: Pick<RunsTable, 'write'>;
  store: CheckpointStore;
  log: Logger;
  progress?: ProgressReporter;
  /** Abort to stop after the current page (the job ends FAILURE, resumable). */
  signal?: AbortSignal;
  /** Called with each page after it is read and before it is written (tests race CDC here). */
  afterRead?: (table: SourceTable, page: readonly Tuple[]) => Promise<void>;
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
}

export interface PhaseTimes {
  readMs: number;
  transformMs: number;
  writeMs: number;
  checkpointMs: number;
}

export interface BackfillPlan {
  params: JobParams;
  ranges: RangeCheckpoint[];
}

/** A request for every run of both tables; override what differs. */
export function backfillRequest(overrides: Partial<BackfillRequest> = {}): BackfillRequest {
  return {
    tables: [...SOURCE_TABLES],
    from: null,
    to: null,
    after: null,
    mode: 'default',
    exactCount: false,
    createSlot: false,
    ...overrides,
  };
}

/** Where a backfill keeps its jobs and checkpoints: the configured database, with its retries. */
export function checkpointStoreFor(config: Config, client: ClickHouseClient, log: Logger): CheckpointStore {
  const policy = { initialDelayMs: config.retryInitialMs, maxDelayMs: config.retryMaxMs, maxRetries: config.backfillRetries };
  return new CheckpointStore(client, config.clickhouseDatabase, policy, log);
}

/** A backfill's context from configuration (Postgres, slot, tuning, checkpoints); `parts` adds
 * where rows go and overrides the rest. */
export function backfillContextFor(
  config: Config,
  client: ClickHouseClient,
  log: Logger,
  parts: Pick<BackfillContext, 'runsTable'> & Partial<BackfillContext>,
): BackfillContext {
  return {
    databaseUrl: requireDatabaseUrl(config),
    slot: config.slot,
    publication: config.publication,
    tuning: backfillTuning(config),
    log,
    ...parts,
    store: parts.store ?? checkpointStoreFor(config, client, log),
  };
}

function newJobId(): string {
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '');
  return `bf_${day}_${randomBytes(3).toString('hex')}`;
}

/** Each table's sub-ranges with their estimated rows. Reads statistics only (or counts, if asked). */
export async function planBackfill(sql: pg.ClientBase, request: BackfillRequest, concurrency: number): Promise<BackfillPlan> {
  if (request.from !== null && request.to !== null) {
    const { rows } = await sql.query<{ ok: boolean }>('SELECT $1::timestamp < $2::timestamp AS ok', [request.from, request.to]);
    if (!rows[0]?.ok) throw new RunsCdcError(`--from ${request.from} is not before --to ${request.to}: nothing could match`);
  }
  const from = request.after ? await laterOf(sql, request.from, request.after.createdAt) : request.from;
  const ranges: RangeCheckpoint[] = [];
  for (const table of request.tables) {
    const parts = await splitRange(sql, table, { from, to: request.to }, concurrency);
    for (const [index, part] of parts.entries()) {
      const estimated = request.exactCount ? await countRows(sql, table, part) : await estimateRows(sql, table, part);
      ranges.push({
        table,
        index,
        seq: 0,
        from: part.from,
        to: part.to,
        cursor: index === 0 && request.after ? formatCursor(request.after) : null,
        rowsCopied: 0,
        estimated,
        done: false,
      });
    }
  }
  const params: JobParams = {
    tables: request.tables,
    from: request.from,
    to: request.to,
    after: request.after ? formatCursor(request.after) : null,
    mode: request.mode,
  };
  return { params, ranges };
}

/** Start a new job. */
export async function runBackfill(sql: pg.ClientBase, request: BackfillRequest, context: BackfillContext): Promise<BackfillResult> {
  const plan = await planBackfill(sql, request, context.tuning.concurrency);
  const job: JobRecord = {
    jobId: newJobId(),
    revision: 0,
    status: 'RUNNING',
    params: { ...plan.params, tuning: context.tuning },
    rowsCopied: 0,
    message: '',
    createdAt: utcTimestamp(),
    updatedAt: utcTimestamp(),
  };
  return execute(sql, job, plan.ranges, request.createSlot, context, true);
}

/** Continue a job from the last checkpoint of each of its ranges, with the job's tuning except
 * where `overrides` (what this run's flags give) names a value (resume-settings.ts). */
export async function resumeBackfill(
  sql: pg.ClientBase,
  jobId: string,
  createSlot: boolean,
  context: BackfillContext,
  overrides: Partial<BackfillTuning> = {},
): Promise<BackfillResult> {
  const job = await context.store.loadJob(jobId);
  if (!job) throw new RunsCdcError(`no backfill job ${jobId}: runs-cdc backfill --list shows the jobs`);
  const ranges = await context.store.loadCheckpoints(jobId);
  if (ranges.length === 0) throw new RunsCdcError(`backfill job ${jobId} has no checkpoints to resume from: start a new backfill`);
  if (job.status === 'SUCCESS' || job.status === 'EMPTY') {
    return {
      jobId,
      status: job.status,
      message: `job ${jobId} already finished with ${job.status}; nothing to resume`,
      rowsCopied: 0,
      tables: tableFigures(ranges, 0, 0),
      seconds: 0,
      version: 0n,
      phases: { readMs: 0, transformMs: 0, writeMs: 0, checkpointMs: 0 },
    };
  }
  const settled = resumedTuning(job.params.tuning, overrides, context.tuning);
  context.log.info(
    { jobId, ranges: ranges.length, done: ranges.filter((r) => r.done).length, tuning: settled.tuning, overridden: settled.overridden },
    settled.fromJob
      ? `resuming backfill ${jobId} with its settings (${describeTuning(settled.tuning)}); ${settled.overridden.length > 0 ? `overridden by this run: ${settled.overridden.join(', ')}` : 'none overridden'}`
      : `resuming backfill ${jobId}, recorded before jobs kept their settings: with this run's (${describeTuning(settled.tuning)})`,
  );
  const resumed = { ...job, params: { ...job.params, tuning: settled.tuning } };
  return execute(sql, resumed, ranges, createSlot, { ...context, tuning: settled.tuning }, false);
}

/** Rows a job had copied from `table` before this run. */
function copiedBefore(ranges: readonly RangeCheckpoint[], table: SourceTable): number {
  return ranges.filter((r) => r.table === table).reduce((n, r) => n + r.rowsCopied, 0);
}

/** Per-table figures for progress and the result. */
function tableFigures(ranges: readonly RangeCheckpoint[], copiedThisRun: number, elapsedSeconds: number): TableProgress[] {
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

async function execute(
  sql: pg.ClientBase,
  job: JobRecord,
  ranges: RangeCheckpoint[],
  createSlot: boolean,
  context: BackfillContext,
  isNew: boolean,
): Promise<BackfillResult> {
  const { store, log, tuning } = context;
  const progress = context.progress ?? silentProgress;
  const started = performance.now();
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort(new RunsCdcError('interrupted'));
  context.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const pending = ranges.filter((r) => !r.done);
  const readers: pg.Client[] = [];
  const copiedByTable = new Map<SourceTable, number>();
  let copiedThisRun = 0;
  let version = 0n;
  let reachedMaxRows = false;
  let record = true;
  const phases: PhaseTimes = { readMs: 0, transformMs: 0, writeMs: 0, checkpointMs: 0 };
  const timed = async <T>(phase: keyof PhaseTimes, step: () => Promise<T> | T): Promise<T> => {
    const begin = performance.now();
    try {
      return await step();
    } finally {
      phases[phase] += performance.now() - begin;
    }
  };

  const figures = (table: SourceTable) => {
    const elapsed = (performance.now() - started) / 1000;
    const own = tableFigures(
      ranges.filter((r) => r.table === table),
      copiedByTable.get(table) ?? 0,
      elapsed,
    );
    return own[0] as TableProgress;
  };

  const finish = async (status: BackfillStatus, message: string): Promise<BackfillResult> => {
    context.signal?.removeEventListener('abort', onOuterAbort);
    progress.stop();
    await Promise.all(readers.map((r) => r.end().catch(() => {})));
    const total = ranges.reduce((n, r) => n + r.rowsCopied, 0);
    if (record) {
      await store.saveJob({ ...job, revision: job.revision + 2, status, rowsCopied: total, message }).catch((error: unknown) => {
        log.error({ jobId: job.jobId, err: (error as Error).message }, 'could not record the backfill status in ClickHouse');
      });
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      jobId: job.jobId,
      status,
      message,
      rowsCopied: copiedThisRun,
      tables: tableFigures(ranges, copiedThisRun, seconds),
      seconds,
      version,
      phases,
    };
  };

  try {
    // The version is fixed before the first read: in default mode the slot must already exist.
    let snapshot: Awaited<ReturnType<typeof exportSnapshot>> | undefined;
    if (job.params.mode === 'repair') {
      snapshot = await exportSnapshot(context.databaseUrl, `runs_cdc_repair_${randomBytes(4).toString('hex')}`);
      version = snapshot.version;
    } else {
      version = await requireReplicationSlot(sql, { slot: context.slot, publication: context.publication, createSlot }, log);
    }
    try {
      for (const _ of pending) {
        const reader = await connectReader(context.databaseUrl);
        readers.push(reader);
        if (snapshot) await importSnapshot(reader, snapshot.name);
      }
    } finally {
      await snapshot?.close(); // every reader holds the snapshot now; the temporary slot can go
    }
    // Ranges before the job row: a listed job always has its ranges to resume from.
    if (isNew) await store.saveCheckpoints(job.jobId, ranges);
    await store.saveJob({ ...job, revision: job.revision + 1, status: 'RUNNING', message: '' });
    log.info(
      { jobId: job.jobId, mode: job.params.mode, version: version.toString(), ranges: pending.length },
      `backfill ${job.jobId} started; if it stops, continue with: runs-cdc backfill --resume ${job.jobId}`,
    );
  } catch (error) {
    // Nothing was read: no job is recorded, so there is nothing to resume either.
    record = false;
    return finish('FAILURE', (error as Error).message);
  }

  progress.start(tableFigures(ranges, 0, 0));
  const limiter = tuning.rateLimit > 0 ? new RateLimiter({ tokensPerInterval: tuning.rateLimit, interval: 'second' }) : undefined;
  // A page never asks for more than one second of the rate limit (the bucket's size).
  const chunk = limiter ? Math.min(tuning.chunkRows, tuning.rateLimit) : tuning.chunkRows;
  const budget = new Map<SourceTable, number>(
    // --max-rows counts the job's rows per table, earlier runs' included.
    job.params.tables.map((t) => [t, tuning.maxRows > 0 ? tuning.maxRows - copiedBefore(ranges, t) : Number.POSITIVE_INFINITY]),
  );

  const copyRange = async (range: RangeCheckpoint, reader: pg.Client): Promise<void> => {
    let cursor = range.cursor ? parseCursor(range.cursor) : null;
    let unsaved = 0;
    const checkpoint = async () => {
      range.seq += 1;
      await timed('checkpointMs', () => store.saveCheckpoints(job.jobId, [range], stop.signal));
      unsaved = 0;
      progress.checkpoint(figures(range.table));
    };
    try {
      while (!range.done) {
        stop.signal.throwIfAborted();
        const limit = Math.min(chunk, budget.get(range.table) ?? 0);
        if (limit <= 0) {
          reachedMaxRows = true;
          break;
        }
        budget.set(range.table, (budget.get(range.table) ?? 0) - limit);
        await limiter?.removeTokens(limit);
        const page = await timed('readMs', () => readPage(reader, range.table, range, cursor, limit));
        budget.set(range.table, (budget.get(range.table) ?? 0) + limit - page.length);
        const last = page.at(-1);
        if (!last) {
          range.done = true;
          break;
        }
        const rows = await timed('transformMs', () => rowsOfPage(page, range.table, version, log));
        await context.afterRead?.(range.table, page);
        stop.signal.throwIfAborted();
        await timed('writeMs', () => context.runsTable.write(rows, stop.signal));
        // Only now, with the page in ClickHouse, does the cursor move past it.
        cursor = { createdAt: String(last.createdAt), id: String(last.id) };
        range.cursor = formatCursor(cursor);
        range.rowsCopied += page.length;
        range.done = page.length < limit;
        copiedThisRun += page.length;
        copiedByTable.set(range.table, (copiedByTable.get(range.table) ?? 0) + page.length);
        progress.update(figures(range.table));
        unsaved += 1;
        if (unsaved >= tuning.checkpointEvery && !range.done) await checkpoint();
      }
      await checkpoint();
    } catch (error) {
      // Record what did reach ClickHouse (the cursor never covers a page that failed).
      if (unsaved > 0) {
        await store.saveCheckpoints(job.jobId, [{ ...range, seq: range.seq + 1 }]).catch(() => {});
      }
      stop.abort(error);
      throw error;
    }
  };

  const outcomes = await Promise.allSettled(pending.map((range, i) => copyRange(range, readers[i] as pg.Client)));
  const failure = stop.signal.aborted ? (stop.signal.reason as Error) : undefined;
  if (failure || outcomes.some((o) => o.status === 'rejected')) {
    const reason = failure ?? (outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
    const message = `${(reason as Error).message}; ClickHouse holds every page up to each range's checkpoint: continue with runs-cdc backfill --resume ${job.jobId}`;
    return finish('FAILURE', message);
  }
  const total = ranges.reduce((n, r) => n + r.rowsCopied, 0);
  if (total === 0) return finish('EMPTY', 'no rows matched');
  const capped = reachedMaxRows ? ` (stopped at --max-rows ${tuning.maxRows} per table; the rest was not copied)` : '';
  return finish('SUCCESS', `${total} rows copied${capped}`);
}
