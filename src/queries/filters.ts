/**
 * What a run-list query may ask for, validated with zod (one sentence per bad value), and its
 * translation into a WHERE clause whose every value is a bound parameter (`{name:Type}`), never
 * spliced into the SQL text.
 */
import { z } from 'zod';
import { UsageError } from '../errors.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';
import { utcTimestamp } from '../utc.ts';

export const RUN_STATUSES = [
  'DELAYED',
  'PENDING',
  'PENDING_VERSION',
  'WAITING_FOR_DEPLOY',
  'DEQUEUED',
  'EXECUTING',
  'WAITING_TO_RESUME',
  'RETRYING_AFTER_FAILURE',
  'PAUSED',
  'CANCELED',
  'INTERRUPTED',
  'COMPLETED_SUCCESSFULLY',
  'COMPLETED_WITH_ERRORS',
  'SYSTEM_FAILURE',
  'CRASHED',
  'EXPIRED',
  'TIMED_OUT',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Statuses counted as failures in the per-task aggregates. */
export const FAILED_STATUSES: readonly RunStatus[] = [
  'COMPLETED_WITH_ERRORS',
  'SYSTEM_FAILURE',
  'CRASHED',
  'INTERRUPTED',
  'EXPIRED',
  'TIMED_OUT',
];

export class QueryInputError extends UsageError {}

const DEFAULT_PERIOD = '7d';
const PERIOD = /^(\d+)(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** The longest period or "ago" a query takes: ten years (ClickHouse's DateTime64 ends at 1900). */
const MAX_PERIOD_MS = 3650 * UNIT_MS.d;
/** The times a query may name: what ClickHouse's DateTime64 holds. */
const EARLIEST_MS = Date.UTC(1900, 0, 1);
const LATEST_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

/** `30m`, `24h`, `7d` in milliseconds, at most ten years. */
export function periodMs(text: string): number {
  const m = PERIOD.exec(text);
  if (!m) throw new QueryInputError(`period ${JSON.stringify(text)} is not like 30m, 24h or 7d`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_PERIOD_MS) throw new QueryInputError(`period ${JSON.stringify(text)} is longer than ten years (3650d)`);
  return ms;
}

/** A UTC time: ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`) or a period before now (`24h`). */
export function parseTime(text: string, now: number): number {
  if (PERIOD.test(text)) return now - periodMs(text);
  const iso = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?Z?$/.test(text)
    ? Date.parse(`${text.replace(' ', 'T')}${text.length > 10 && !text.endsWith('Z') ? 'Z' : ''}`)
    : Number.NaN;
  if (Number.isNaN(iso))
    throw new QueryInputError(`time ${JSON.stringify(text)} is not an ISO UTC time (2026-01-31T12:00:00Z) or a period like 24h`);
  // Date.parse rolls 2026-02-30 over to March 2nd: a date that does not exist is refused.
  if (new Date(iso).toISOString().slice(0, 10) !== text.slice(0, 10))
    throw new QueryInputError(`time ${JSON.stringify(text)} names a day that does not exist`);
  if (iso < EARLIEST_MS || iso > LATEST_MS) throw new QueryInputError(`time ${JSON.stringify(text)} is outside 1900-01-01 to 2299-12-31`);
  return iso;
}

const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s !== ''));
const id = z.string().min(1, 'must not be empty');

export const scopeSchema = z.object({
  organizationId: id,
  projectId: id,
  environmentId: id,
});

export const filtersSchema = scopeSchema.extend({
  tasks: list.optional(),
  versions: list.optional(),
  statuses: list
    .pipe(
      z.array(z.enum(RUN_STATUSES, { error: (i) => `unknown status ${JSON.stringify(i.input)}: use one of ${RUN_STATUSES.join(', ')}` })),
    )
    .optional(),
  /** Runs with at least one of these tags. */
  tagsAny: list.optional(),
  /** Runs with every one of these tags. */
  tagsAll: list.optional(),
  scheduleId: id.optional(),
  /** `30m`, `24h`, `7d`; ignored when `from` is given. Default 7d. */
  period: z.string().regex(PERIOD, 'must be like 30m, 24h or 7d').optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  test: z.enum(['only', 'exclude']).optional(),
  rootOnly: z.boolean().optional(),
  batchId: id.optional(),
  bulkActionId: id.optional(),
  /** Friendly ids (`run_...`). */
  runIds: list.optional(),
  queues: list.optional(),
  regions: list.optional(),
  machines: list.optional(),
  sourceTable: z.enum(SOURCE_TABLES).optional(),
});

export type RunFiltersInput = z.input<typeof filtersSchema>;
export type RunFilters = z.output<typeof filtersSchema>;

/** Turn zod's issues into one sentence per bad value. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new QueryInputError(parsed.error.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; '));
}

export interface TimeWindow {
  fromMs: number;
  toMs: number;
}

/** The created_at window: explicit from/to, else the period (default 7 days) up to now. */
export function timeWindow(filters: Pick<RunFilters, 'period' | 'from' | 'to'>, now = Date.now()): TimeWindow {
  const toMs = filters.to ? parseTime(filters.to, now) : now;
  const fromMs = filters.from ? parseTime(filters.from, now) : toMs - periodMs(filters.period ?? DEFAULT_PERIOD);
  if (fromMs >= toMs) {
    throw new QueryInputError(`from (${new Date(fromMs).toISOString()}) must be before to (${new Date(toMs).toISOString()})`);
  }
  return { fromMs, toMs };
}

export interface Where {
  sql: string;
  params: Record<string, unknown>;
}

/** The WHERE clause (without the keyword) for scope, window and filters; live runs only. */
export function whereClause(filters: RunFilters, window: TimeWindow): Where {
  const conditions = [
    'organization_id = {organizationId:String}',
    'project_id = {projectId:String}',
    'environment_id = {environmentId:String}',
    "created_at >= {from:DateTime64(3, 'UTC')}",
    "created_at < {to:DateTime64(3, 'UTC')}",
    '_is_deleted = 0',
  ];
  const params: Record<string, unknown> = {
    organizationId: filters.organizationId,
    projectId: filters.projectId,
    environmentId: filters.environmentId,
    from: utcTimestamp(window.fromMs),
    to: utcTimestamp(window.toMs),
  };
  const anyOf = (column: string, name: string, values: string[] | undefined) => {
    if (!values || values.length === 0) return;
    conditions.push(`${column} IN {${name}:Array(String)}`);
    params[name] = values;
  };
  anyOf('task_identifier', 'tasks', filters.tasks);
  anyOf('task_version', 'versions', filters.versions);
  anyOf('status', 'statuses', filters.statuses);
  anyOf('friendly_id', 'runIds', filters.runIds);
  anyOf('queue', 'queues', filters.queues);
  anyOf('region', 'regions', filters.regions);
  anyOf('machine_preset', 'machines', filters.machines);
  if (filters.tagsAny?.length) {
    conditions.push('hasAny(tags, {tagsAny:Array(String)})');
    params.tagsAny = filters.tagsAny;
  }
  if (filters.tagsAll?.length) {
    conditions.push('hasAll(tags, {tagsAll:Array(String)})');
    params.tagsAll = filters.tagsAll;
  }
  const equals = (column: string, name: string, value: string | undefined) => {
    if (value === undefined) return;
    conditions.push(`${column} = {${name}:String}`);
    params[name] = value;
  };
  equals('schedule_id', 'scheduleId', filters.scheduleId);
  equals('batch_id', 'batchId', filters.batchId);
  equals('source_table', 'sourceTable', filters.sourceTable);
  if (filters.bulkActionId !== undefined) {
    conditions.push('has(bulk_action_group_ids, {bulkActionId:String})');
    params.bulkActionId = filters.bulkActionId;
  }
  if (filters.test === 'only') conditions.push('is_test');
  if (filters.test === 'exclude') conditions.push('NOT is_test');
  if (filters.rootOnly) conditions.push('root_run_id IS NULL');
  return { sql: conditions.join(' AND '), params };
}
