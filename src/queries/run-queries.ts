/**
 * The run list and its analytics, read from the replicated table: the surface a web app imports.
 *
 * Every read sees the deduplicated, live state: `FINAL` (ReplacingMergeTree keeps the highest
 * `_version` per sort key) and `_is_deleted = 0`. `do_not_merge_across_partitions_select_final`
 * makes FINAL merge within each monthly partition only; that is exact here because the partition
 * (month of created_at) is a function of the sort key, so all versions of a key share a partition.
 * Reads run with `readonly = 2` and time and memory limits.
 *
 * On the embedded engine give RunQueries a connection of its own: chDB keeps a query's settings
 * on its connection, so `readonly` would then also refuse that connection's inserts.
 */
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { z } from 'zod';
import { firstLine, RunsCdcError } from '../errors.ts';
import { runsTableIn } from '../schema/tables.ts';
import { readRows } from '../sink/read.ts';
import { utcTimestamp } from '../utc.ts';
import {
  FAILED_STATUSES,
  filtersSchema,
  parseInput,
  QueryInputError,
  type RunFilters,
  type RunFiltersInput,
  scopeSchema,
  type TimeWindow,
  timeWindow,
  whereClause,
} from './filters.ts';

export const MAX_LIST_LIMIT = 100;
export const MAX_TAGS_LIMIT = 500;
export const DEFAULT_LIST_LIMIT = 25;
export const DEFAULT_TAGS_LIMIT = 50;
/** Histogram bucket widths (seconds), smallest first: the first giving at most MAX_BUCKETS wins. */
export const BUCKET_LADDER = [60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000] as const;
export const MAX_BUCKETS = 100;

export interface QueryLimits {
  /** max_execution_time, seconds. */
  timeoutSeconds: number;
  /** max_memory_usage, bytes. */
  maxMemoryBytes: number;
}

export interface RunListItem {
  runId: string;
  friendlyId: string;
  sourceTable: string;
  taskIdentifier: string;
  status: string;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  durationMs: number | null;
  costInCents: number;
  tags: string[];
  taskVersion: string | null;
  machinePreset: string | null;
  queue: string;
  isTest: boolean;
  rootRunId: string | null;
  parentRunId: string | null;
}

export interface RunListPage {
  runs: RunListItem[];
  /** Whether older runs follow (equals nextCursor !== null). */
  hasNextPage: boolean;
  /** Whether newer runs precede this page. */
  hasPreviousPage: boolean;
  /** Cursor of the next (older) page, null on the last page. */
  nextCursor: string | null;
  /** Cursor of the previous (newer) page, null on the first page. */
  previousCursor: string | null;
}

export interface StatusBucket {
  bucket: string;
  status: string;
  runs: number;
}

export interface TaskAggregate {
  taskIdentifier: string;
  runs: number;
  failures: number;
  avgDurationMs: number | null;
  p95DurationMs: number | null;
  totalCostInCents: number;
}

export interface RunStats {
  from: string;
  to: string;
  bucketSeconds: number;
  histogram: StatusBucket[];
  tasks: TaskAggregate[];
}

export interface TagsPage {
  tags: string[];
  nextCursor: string | null;
}

const pageSchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT, `limit must be at most ${MAX_LIST_LIMIT}`).default(DEFAULT_LIST_LIMIT),
  cursor: z.string().optional(),
});
const tagsSchema = scopeSchema.partial({ environmentId: true }).extend({
  prefix: z.string().default(''),
  limit: z.coerce.number().int().min(1).max(MAX_TAGS_LIMIT, `limit must be at most ${MAX_TAGS_LIMIT}`).default(DEFAULT_TAGS_LIMIT),
  cursor: z.string().optional(),
});
export type TagsInput = z.input<typeof tagsSchema>;

/** Opaque keyset cursors: base64url of JSON. */
const listCursorSchema = z.object({
  d: z.enum(['next', 'prev']),
  t: z.string().regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/),
  id: z.string(),
});
type ListCursor = z.infer<typeof listCursorSchema>;

function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decodeCursor<S extends z.ZodType>(schema: S, text: string): z.output<S> {
  try {
    return schema.parse(JSON.parse(Buffer.from(text, 'base64url').toString('utf8')));
  } catch {
    throw new QueryInputError(
      `malformed cursor ${JSON.stringify(text.slice(0, 60))}: pass a cursor exactly as a previous page returned it`,
    );
  }
}

interface ListRow {
  run_id: string;
  friendly_id: string;
  source_table: string;
  task_identifier: string;
  status: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  duration_ms: string | number | null;
  total_cost_cents: number;
  tags: string[];
  task_version: string | null;
  machine_preset: string | null;
  queue: string;
  is_test: boolean;
  root_run_id: string | null;
  parent_run_id: string | null;
}

const LIST_COLUMNS = `run_id, friendly_id, source_table, task_identifier, status, created_at, started_at, completed_at,
  if(started_at IS NULL OR completed_at IS NULL, NULL, dateDiff('millisecond', started_at, completed_at)) AS duration_ms,
  cost_in_cents + base_cost_in_cents AS total_cost_cents, tags, task_version, machine_preset, queue, is_test, root_run_id, parent_run_id`;

function toItem(r: ListRow): RunListItem {
  return {
    runId: r.run_id,
    friendlyId: r.friendly_id,
    sourceTable: r.source_table,
    taskIdentifier: r.task_identifier,
    status: r.status,
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    costInCents: r.total_cost_cents,
    tags: r.tags,
    taskVersion: r.task_version,
    machinePreset: r.machine_preset,
    queue: r.queue,
    isTest: r.is_test,
    rootRunId: r.root_run_id,
    parentRunId: r.parent_run_id,
  };
}

export class QueryError extends RunsCdcError {}

export class RunQueries {
  private readonly table: string;
  private readonly settings: ClickHouseSettings;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
    limits: QueryLimits,
    /** Current time for relative periods; tests pin it. */
    private readonly now: () => number = Date.now,
  ) {
    this.table = runsTableIn(database);
    this.settings = {
      readonly: '2', // no writes; settings may still be set per query (1 would forbid these)
      max_execution_time: limits.timeoutSeconds,
      max_memory_usage: String(limits.maxMemoryBytes),
      do_not_merge_across_partitions_select_final: 1,
    };
  }

  /**
   * One page of runs, newest first, with cursors for the pages around it.
   *
   * FINAL costs in proportion to the rows in the time range it reads, and a page needs only the
   * rows nearest its cursor: so the range is read in slices growing away from the cursor (1 hour,
   * then 8 times wider each time) until the page is full. Exact: a slice holds every row of its
   * time span, and all versions of a run share its created_at (part of the sort key).
   */
  async list(filtersInput: RunFiltersInput, pageInput: z.input<typeof pageSchema> = {}): Promise<RunListPage> {
    const filters = parseInput(filtersSchema, filtersInput);
    const page = parseInput(pageSchema, pageInput);
    const cursor = page.cursor === undefined ? undefined : decodeCursor(listCursorSchema, page.cursor);
    const window = timeWindow(filters, this.now());
    const backward = cursor?.d === 'prev';
    let keyset = '';
    if (cursor) keyset = ` AND (created_at, run_id) ${backward ? '>' : '<'} ({cursorTime:DateTime64(3, 'UTC')}, {cursorId:String})`;
    const order = backward ? 'ASC' : 'DESC';
    const cursorMs = cursor ? Date.parse(`${cursor.t.replace(' ', 'T')}Z`) : undefined;
    const rows: ListRow[] = [];
    for (const slice of slices(window, cursorMs, backward)) {
      const where = whereClause(filters, slice);
      rows.push(
        ...(await this.select<ListRow>(
          `SELECT ${LIST_COLUMNS} FROM ${this.table} FINAL WHERE ${where.sql}${keyset}
            ORDER BY created_at ${order}, run_id ${order} LIMIT {limit:UInt32}`,
          { ...where.params, cursorTime: cursor?.t, cursorId: cursor?.id, limit: page.limit + 1 - rows.length },
        )),
      );
      if (rows.length > page.limit) break;
    }
    const more = rows.length > page.limit;
    const pageRows = rows.slice(0, page.limit);
    if (backward) pageRows.reverse();
    const runs = pageRows.map(toItem);
    const first = runs[0];
    const last = runs.at(-1);
    const hasNext = backward ? runs.length > 0 : more;
    const hasPrevious = backward ? more : cursor !== undefined && runs.length > 0;
    const at = (d: ListCursor['d'], item: RunListItem) => encodeCursor({ d, t: item.createdAt, id: item.runId } satisfies ListCursor);
    return {
      runs,
      hasNextPage: hasNext,
      hasPreviousPage: hasPrevious,
      nextCursor: hasNext && last ? at('next', last) : null,
      previousCursor: hasPrevious && first ? at('prev', first) : null,
    };
  }

  /** Live runs matching the filters. */
  async count(filtersInput: RunFiltersInput): Promise<number> {
    const filters = parseInput(filtersSchema, filtersInput);
    const where = whereClause(filters, timeWindow(filters, this.now()));
    const [row] = await this.select<{ n: string }>(`SELECT count() AS n FROM ${this.table} FINAL WHERE ${where.sql}`, where.params);
    return Number(row?.n ?? 0);
  }

  /** Status histogram over time (at most ~100 buckets of a round width) and per-task aggregates. */
  async stats(filtersInput: RunFiltersInput): Promise<RunStats> {
    const filters: RunFilters = parseInput(filtersSchema, filtersInput);
    const window = timeWindow(filters, this.now());
    const where = whereClause(filters, window);
    const bucketSeconds = bucketWidth(window.toMs - window.fromMs);
    const live = `SELECT created_at, status, task_identifier, cost_in_cents + base_cost_in_cents AS cost,
        if(started_at IS NULL OR completed_at IS NULL, NULL, dateDiff('millisecond', started_at, completed_at)) AS duration
      FROM ${this.table} FINAL WHERE ${where.sql}`;
    // One FINAL scan for both: grouping sets give the (bucket, status) rows and the task rows;
    // GROUPING(task_identifier) = 1 marks the rows where it was not grouped (the histogram).
    const grouped = await this.select<{
      histogram_row: number;
      bucket: string;
      status: string;
      task_identifier: string;
      runs: string;
      failures: string;
      avg_ms: number | null;
      p95_ms: number | null;
      cost: number;
    }>(
      `SELECT GROUPING(task_identifier) AS histogram_row,
              toStartOfInterval(created_at, toIntervalSecond({bucketSeconds:UInt32})) AS bucket, status, task_identifier,
              count() AS runs, countIf(status IN {failed:Array(String)}) AS failures,
              avg(duration) AS avg_ms, quantile(0.95)(duration) AS p95_ms, round(sum(cost), 4) AS cost
         FROM (${live})
        GROUP BY GROUPING SETS ((bucket, status), (task_identifier))
        ORDER BY histogram_row, bucket, status, runs DESC, task_identifier`,
      { ...where.params, bucketSeconds, failed: FAILED_STATUSES },
    );
    const histogram = grouped.filter((r) => Number(r.histogram_row) === 1);
    const tasks = grouped.filter((r) => Number(r.histogram_row) === 0).sort((a, b) => Number(b.runs) - Number(a.runs));
    return {
      from: utcTimestamp(window.fromMs),
      to: utcTimestamp(window.toMs),
      bucketSeconds,
      histogram: histogram.map((h) => ({ bucket: h.bucket, status: h.status, runs: Number(h.runs) })),
      tasks: tasks.map((t) => ({
        taskIdentifier: t.task_identifier,
        runs: Number(t.runs),
        failures: Number(t.failures),
        avgDurationMs: t.avg_ms === null || Number.isNaN(t.avg_ms) ? null : Math.round(t.avg_ms),
        p95DurationMs: t.p95_ms === null || Number.isNaN(t.p95_ms) ? null : Math.round(t.p95_ms),
        totalCostInCents: t.cost,
      })),
    };
  }

  /** Distinct tags of live runs in scope starting with `prefix`, in byte order, keyset-paged. */
  async tags(input: TagsInput): Promise<TagsPage> {
    const q = parseInput(tagsSchema, input);
    const after = q.cursor === undefined ? undefined : decodeCursor(z.object({ tag: z.string() }), q.cursor).tag;
    const env = q.environmentId === undefined ? '' : ' AND environment_id = {environmentId:String}';
    const rows = await this.select<{ tag: string }>(
      `SELECT tag FROM (
         SELECT arrayJoin(tags) AS tag FROM ${this.table} FINAL
          WHERE organization_id = {organizationId:String} AND project_id = {projectId:String}${env} AND _is_deleted = 0)
        WHERE startsWith(tag, {prefix:String})${after === undefined ? '' : ' AND tag > {after:String}'}
        GROUP BY tag ORDER BY tag LIMIT {limit:UInt32}`,
      {
        organizationId: q.organizationId,
        projectId: q.projectId,
        environmentId: q.environmentId,
        prefix: q.prefix,
        after,
        limit: q.limit + 1,
      },
    );
    const tags = rows.slice(0, q.limit).map((r) => r.tag);
    const last = tags.at(-1);
    return { tags, nextCursor: rows.length > q.limit && last !== undefined ? encodeCursor({ tag: last }) : null };
  }

  private async select<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    const bound = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
    try {
      return await readRows<T>(this.client, { query, query_params: bound, clickhouse_settings: this.settings });
    } catch (error) {
      const message = firstLine(error);
      // The type as well: a server's message may not name it ("Memory limit (for query) exceeded").
      const typed = `${(error as { type?: string }).type ?? ''} ${message}`;
      if (/READONLY|Cannot modify '\w+' setting in readonly mode/.test(typed)) {
        throw new QueryError(
          'the ClickHouse user has readonly=1, which forbids the per-query limits runs-cdc sets (max_execution_time, max_memory_usage): give the reading user a profile with readonly=2',
        );
      }
      if (/TIMEOUT_EXCEEDED|Timeout exceeded/i.test(typed)) {
        throw new QueryError(
          `the query ran longer than ${this.settings.max_execution_time} s (max_execution_time): narrow the period or the filters`,
        );
      }
      if (/MEMORY_LIMIT_EXCEEDED|memory limit exceeded/i.test(typed)) {
        throw new QueryError(
          `the query needed more than ${this.settings.max_memory_usage} bytes (max_memory_usage): narrow the period or the filters`,
        );
      }
      throw new QueryError(`ClickHouse could not run the query: ${message}`);
    }
  }
}

const FIRST_SLICE_MS = 3_600_000;
const SLICE_GROWTH = 8;

/**
 * Adjacent time slices covering the window from the cursor's side outward: newest first when
 * paging forward (toward older runs), oldest first when paging back. The cursor's own millisecond
 * is inside the first slice (the keyset condition then picks the rows after it).
 */
export function slices(window: TimeWindow, cursorMs: number | undefined, backward: boolean): TimeWindow[] {
  const out: TimeWindow[] = [];
  let width = FIRST_SLICE_MS;
  if (!backward) {
    let upper = cursorMs === undefined ? window.toMs : Math.min(window.toMs, cursorMs + 1);
    while (upper > window.fromMs) {
      const lower = Math.max(window.fromMs, upper - width);
      out.push({ fromMs: lower, toMs: upper });
      upper = lower;
      width *= SLICE_GROWTH;
    }
  } else {
    let lower = cursorMs === undefined ? window.fromMs : Math.max(window.fromMs, cursorMs);
    while (lower < window.toMs) {
      const upper = Math.min(window.toMs, lower + width);
      out.push({ fromMs: lower, toMs: upper });
      lower = upper;
      width *= SLICE_GROWTH;
    }
  }
  return out;
}

/** The smallest ladder width giving at most MAX_BUCKETS buckets over the period. */
export function bucketWidth(periodMs: number): number {
  for (const seconds of BUCKET_LADDER) if (Math.ceil(periodMs / 1000 / seconds) <= MAX_BUCKETS) return seconds;
  return BUCKET_LADDER[BUCKET_LADDER.length - 1] as number;
}
