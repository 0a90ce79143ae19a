/**
 * Backfill jobs and checkpoints, kept in ClickHouse next to the rows they describe. A sub-range's
 * checkpoint is written only after the page it covers has been written, so a resume from it can
 * copy a row twice (same version: ReplacingMergeTree keeps one) but never skip one.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { BackfillTuning } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { SourceTable } from '../schema/columns.ts';
import { assertIdentifier } from '../schema/tables.ts';
import { type RetryContext, type RetryPolicy, withClickHouseRetry } from '../sink/retry.ts';
import { utcTimestamp } from '../utc.ts';

export type BackfillStatus = 'RUNNING' | 'SUCCESS' | 'FAILURE' | 'EMPTY';
export type BackfillMode = 'default' | 'repair';

/** What a job copies; fixed when it starts, reused by --resume. */
export interface JobParams {
  tables: SourceTable[];
  /** Inclusive lower bound of "createdAt" (Postgres timestamp text), if any. */
  from: string | null;
  /** Exclusive upper bound of "createdAt", if any. */
  to: string | null;
  /** Start after this cursor (`<createdAt>_<id>`), if any. */
  after: string | null;
  mode: BackfillMode;
  /** The tuning the job runs with, so a resume keeps it (absent in jobs recorded before it was kept). */
  tuning?: BackfillTuning;
}

export interface JobRecord {
  jobId: string;
  revision: number;
  status: BackfillStatus;
  params: JobParams;
  rowsCopied: number;
  message: string;
  createdAt: string;
  updatedAt: string;
}

/** One sub-range of one table and how far it got. */
export interface RangeCheckpoint {
  table: SourceTable;
  index: number;
  /** Checkpoints written for this range so far (the row's ReplacingMergeTree version). */
  seq: number;
  /** Inclusive lower bound of "createdAt", null for unbounded. */
  from: string | null;
  /** Exclusive upper bound of "createdAt", null for unbounded. */
  to: string | null;
  /** The last row copied (`<createdAt>_<id>`), null before the first page. */
  cursor: string | null;
  rowsCopied: number;
  estimated: number;
  done: boolean;
}

interface JobRow {
  job_id: string;
  revision: string;
  status: BackfillStatus;
  mode: BackfillMode;
  params: string;
  rows_copied: string;
  message: string;
  created_at: string;
  updated_at: string;
}

interface CheckpointRow {
  job_id: string;
  source_table: SourceTable;
  range_index: number;
  seq: string;
  range_from: string | null;
  range_to: string | null;
  cursor: string | null;
  rows_copied: string;
  estimated: string;
  done: boolean;
  updated_at: string;
}

export class CheckpointStore {
  private readonly jobs: string;
  private readonly checkpoints: string;
  private readonly retry: RetryContext;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
    policy: RetryPolicy,
    log: Logger,
  ) {
    assertIdentifier(database, 'ClickHouse database');
    this.jobs = `${database}.backfill_jobs`;
    this.checkpoints = `${database}.backfill_checkpoints`;
    this.retry = { policy, log, stats: { retries: 0, retriesByReason: {} }, target: this.checkpoints };
  }

  async saveJob(job: JobRecord, signal?: AbortSignal): Promise<void> {
    const row: JobRow = {
      job_id: job.jobId,
      revision: String(job.revision),
      status: job.status,
      mode: job.params.mode,
      params: JSON.stringify(job.params),
      rows_copied: String(job.rowsCopied),
      message: job.message,
      created_at: job.createdAt,
      updated_at: utcTimestamp(),
    };
    await this.insert(this.jobs, [row], `recording backfill job ${job.jobId}`, signal);
  }

  async saveCheckpoints(jobId: string, ranges: readonly RangeCheckpoint[], signal?: AbortSignal): Promise<void> {
    const updatedAt = utcTimestamp();
    const rows: CheckpointRow[] = ranges.map((r) => ({
      job_id: jobId,
      source_table: r.table,
      range_index: r.index,
      seq: String(r.seq),
      range_from: r.from,
      range_to: r.to,
      cursor: r.cursor,
      rows_copied: String(r.rowsCopied),
      estimated: String(r.estimated),
      done: r.done,
      updated_at: updatedAt,
    }));
    await this.insert(this.checkpoints, rows, `a checkpoint of backfill job ${jobId}`, signal);
  }

  async loadJob(jobId: string): Promise<JobRecord | undefined> {
    const rows = await this.select<JobRow>(`SELECT * FROM ${this.jobs} FINAL WHERE job_id = {id:String}`, { id: jobId });
    return rows[0] && toJob(rows[0]);
  }

  async loadCheckpoints(jobId: string): Promise<RangeCheckpoint[]> {
    const rows = await this.select<CheckpointRow>(
      `SELECT * FROM ${this.checkpoints} FINAL WHERE job_id = {id:String} ORDER BY source_table, range_index`,
      { id: jobId },
    );
    return rows.map((r) => ({
      table: r.source_table,
      index: Number(r.range_index),
      seq: Number(r.seq),
      from: r.range_from,
      to: r.range_to,
      cursor: r.cursor,
      rowsCopied: Number(r.rows_copied),
      estimated: Number(r.estimated),
      done: Boolean(r.done),
    }));
  }

  /** The newest jobs first: newest started, or (`'updated'`) the most recently changed. */
  async listJobs(limit = 50, newest: 'created' | 'updated' = 'created'): Promise<JobRecord[]> {
    const order = newest === 'updated' ? 'updated_at DESC, job_id' : 'created_at DESC, job_id';
    const rows = await this.select<JobRow>(`SELECT * FROM ${this.jobs} FINAL ORDER BY ${order} LIMIT {limit:UInt32}`, { limit });
    return rows.map(toJob);
  }

  private async insert(table: string, values: object[], what: string, signal?: AbortSignal): Promise<void> {
    await withClickHouseRetry(this.retry, what, () => this.client.insert({ table, values, format: 'JSONEachRow' }), signal);
  }

  private async select<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    return withClickHouseRetry(this.retry, 'reading backfill jobs', async () => {
      const result = await this.client.query({ query, query_params: params, format: 'JSONEachRow' });
      return result.json<T>();
    });
  }
}

function toJob(row: JobRow): JobRecord {
  return {
    jobId: row.job_id,
    revision: Number(row.revision),
    status: row.status,
    params: JSON.parse(row.params) as JobParams,
    rowsCopied: Number(row.rows_copied),
    message: row.message,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
