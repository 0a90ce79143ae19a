/**
 * A backfill job: plan each table's ranges, start it or resume it, and let a BackfillRun (run.ts)
 * copy every range page by page through the daemon's transform and sink, checkpoint, and end
 * with one status.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import { type BackfillTuning, backfillTuning, type Config, requireDatabaseUrl } from '../config.ts';
import { RunsCdcError, UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { SOURCE_TABLES, type SourceTable } from '../schema/columns.ts';
import { utcTimestamp } from '../utc.ts';
import { type BackfillMode, CheckpointStore, type JobParams, type JobRecord, type RangeCheckpoint } from './checkpoints.ts';
import { type Cursor, formatCursor } from './cursor.ts';
import { describeTuning, resumedTuning } from './resume-settings.ts';
import { type BackfillContext, type BackfillResult, BackfillRun, tableFigures } from './run.ts';
import { countRows, estimateRows, laterOf, splitRange } from './source.ts';

export type { BackfillContext, BackfillResult } from './run.ts';

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
  return new BackfillRun(sql, context, { job, ranges: plan.ranges, createSlot: request.createSlot, isNew: true }).run();
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
  if (!job) throw new UsageError(`no backfill job ${jobId}: runs-cdc backfill --list shows the jobs`);
  const ranges = await context.store.loadCheckpoints(jobId);
  if (ranges.length === 0) throw new UsageError(`backfill job ${jobId} has no checkpoints to resume from: start a new backfill`);
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
  return new BackfillRun(sql, { ...context, tuning: settled.tuning }, { job: resumed, ranges, createSlot, isNew: false }).run();
}
