import { UsageError } from '../errors.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';
import { filtersSchema, parseTime, periodMs, RUN_STATUSES, timeWindow } from './filters.ts';
import { DEFAULT_LIST_LIMIT, DEFAULT_TAGS_LIMIT, MAX_LIST_LIMIT, MAX_TAGS_LIMIT, type RunQueries } from './run-queries.ts';

/**
 * The one naming of query inputs shared by the CLI flags (`--org`, `--status`, ...) and the HTTP
 * API's query string (`org=`, `status=`, ...), mapped onto the library's filter fields.
 */
export const QUERY_PARAMS = {
  org: 'organizationId',
  project: 'projectId',
  env: 'environmentId',
  status: 'statuses',
  task: 'tasks',
  version: 'versions',
  tag: 'tagsAny',
  'tag-all': 'tagsAll',
  schedule: 'scheduleId',
  period: 'period',
  from: 'from',
  to: 'to',
  test: 'test',
  'root-only': 'rootOnly',
  batch: 'batchId',
  'bulk-action': 'bulkActionId',
  'run-id': 'runIds',
  queue: 'queues',
  region: 'regions',
  machine: 'machines',
  'source-table': 'sourceTable',
  limit: 'limit',
  cursor: 'cursor',
  prefix: 'prefix',
} as const;

export type QueryParamName = keyof typeof QUERY_PARAMS;

/** The four queries, by the name the CLI uses and the path the HTTP API serves them on. */
export const QUERY_PATHS = { list: '/runs', count: '/runs/count', stats: '/runs/stats', tags: '/runs/tags' } as const;
export type QueryKind = keyof typeof QUERY_PATHS;

const KIND_BY_PATH = new Map<string, QueryKind>(Object.entries(QUERY_PATHS).map(([kind, path]) => [path, kind as QueryKind]));
/** The query a request path names (the API's and the live page's), if any. */
export function queryKindOf(path: string): QueryKind | undefined {
  return KIND_BY_PATH.get(path);
}

const ALL = Object.keys(QUERY_PARAMS) as QueryParamName[];
/** The names each query takes; anything else is refused. */
export const QUERY_NAMES: Record<QueryKind, readonly QueryParamName[]> = {
  list: ALL.filter((f) => f !== 'prefix'),
  count: ALL.filter((f) => !['prefix', 'limit', 'cursor'].includes(f)),
  stats: ALL.filter((f) => !['prefix', 'limit', 'cursor'].includes(f)),
  tags: ['org', 'project', 'env', 'prefix', 'limit', 'cursor'],
};

/** Names that take several values (repeated, or comma-separated). */
export const LIST_NAMES: ReadonlySet<QueryParamName> = new Set([
  'status',
  'task',
  'version',
  'tag',
  'tag-all',
  'run-id',
  'queue',
  'region',
  'machine',
]);

/** Page sizes: the default and the largest, per query that pages. */
const LIMITS = {
  list: { default: DEFAULT_LIST_LIMIT, max: MAX_LIST_LIMIT },
  tags: { default: DEFAULT_TAGS_LIMIT, max: MAX_TAGS_LIMIT },
} as const;

/**
 * What each name takes, for help texts and error messages: the format, and whether it is
 * required (per query).
 */
export const QUERY_HELP: Record<QueryParamName, string> = {
  org: 'organization id (required)',
  project: 'project id (required)',
  env: 'environment id (required; optional for tags)',
  status: `run statuses, any of (${RUN_STATUSES.join(', ')})`,
  task: 'task identifiers, any of',
  version: 'task versions, any of',
  tag: 'runs with any of these tags',
  'tag-all': 'runs with all of these tags',
  schedule: 'schedule id',
  period: 'window ending now: 30m, 24h, 7d (default 7d, at most 3650d); ignored with --from',
  from: 'created at or after: ISO UTC (2026-01-31, 2026-01-31T12:00:00Z) or a period ago (24h)',
  to: 'created before: ISO UTC or a period ago (default now)',
  test: 'only | exclude test runs',
  'root-only': 'root runs only (no parent)',
  batch: 'batch id',
  'bulk-action': 'bulk action id',
  'run-id': 'friendly run ids (run_...), any of',
  queue: 'queues, any of',
  region: 'regions, any of',
  machine: 'machine presets, any of',
  'source-table': `${SOURCE_TABLES.join(' | ')}`,
  limit: `page size (list: default ${LIMITS.list.default}, at most ${LIMITS.list.max}; tags: default ${LIMITS.tags.default}, at most ${LIMITS.tags.max})`,
  cursor: 'opaque cursor from a previous page (nextCursor / previousCursor)',
  prefix: 'tag prefix, e.g. user: (default: all tags)',
};

const NAME_OF_KEY = new Map<string, QueryParamName>(Object.entries(QUERY_PARAMS).map(([name, key]) => [key, name as QueryParamName]));

/** How the caller spells names: CLI flags (`--env`) or query parameters (`env`). */
export type NameStyle = 'flag' | 'param';
const shown = (name: string, style: NameStyle) => (style === 'flag' ? `--${name}` : name);

/**
 * The one parser of run-query input, shared by the CLI and the HTTP API: named values in the
 * order given (a repeated name appears several times) to library input. A repeated single-value
 * name, an unknown name, a missing scope, a bad status, an impossible date, a period over ten
 * years or a limit out of range is a UsageError naming the input as the caller typed it.
 */
export function parseQuery(kind: QueryKind, pairs: Iterable<[string, string | boolean]>, style: NameStyle): Record<string, unknown> {
  const names = QUERY_NAMES[kind];
  const seen = new Map<QueryParamName, Array<string | boolean>>();
  for (const [name, value] of pairs) {
    if (!names.includes(name as QueryParamName)) {
      throw new UsageError(
        `unknown ${style === 'flag' ? 'flag' : 'parameter'} ${JSON.stringify(shown(name, style).slice(0, 60))}: ${QUERY_PATHS[kind]} takes ${names.map((n) => shown(n, style)).join(', ')}`,
      );
    }
    const known = name as QueryParamName;
    if (seen.has(known) && !LIST_NAMES.has(known)) {
      throw new UsageError(`${shown(known, style)} is given more than once: give it once`);
    }
    seen.set(known, [...(seen.get(known) ?? []), value]);
  }
  const input: Record<string, unknown> = {};
  for (const [name, values] of seen) {
    const value = values[0] as string | boolean;
    const key = QUERY_PARAMS[name];
    if (name === 'root-only') {
      if (value === true || value === '' || value === 'true' || value === '1') input[key] = true;
      else if (value === 'false' || value === '0') input[key] = false;
      else throw new UsageError(`${shown(name, style)} takes true or false (got ${JSON.stringify(String(value).slice(0, 60))})`);
    } else if (LIST_NAMES.has(name)) {
      input[key] = values
        .flatMap((v) => String(v).split(','))
        .map((v) => v.trim())
        .filter((v) => v !== '');
    } else if (name === 'limit') {
      const page = LIMITS[kind as keyof typeof LIMITS];
      const n = /^\d{1,9}$/.test(String(value)) ? Number(value) : Number.NaN;
      if (!(n >= 1 && n <= page.max)) {
        throw new UsageError(
          `${shown(name, style)} must be a whole number from 1 to ${page.max} (got ${JSON.stringify(String(value).slice(0, 60))})`,
        );
      }
      input[key] = n;
    } else input[key] = String(value);
  }
  // Times and the window, named as typed.
  for (const name of ['from', 'to', 'period'] as const) {
    const text = input[QUERY_PARAMS[name]];
    if (typeof text !== 'string') continue;
    try {
      if (name === 'period') periodMs(text);
      else parseTime(text, Date.now());
    } catch (error) {
      throw new UsageError(`${shown(name, style)}: ${(error as Error).message}`);
    }
  }
  if (kind !== 'tags') {
    const parsed = filtersSchema.safeParse(input);
    if (!parsed.success) throw new UsageError(issuesSentence(parsed.error.issues, style));
    try {
      timeWindow(parsed.data);
    } catch (error) {
      throw new UsageError(
        style === 'flag'
          ? (error as Error).message.replace(/^from \(/, '--from (').replace(/before to \(/, 'before --to (')
          : (error as Error).message,
      );
    }
  } else {
    for (const name of ['org', 'project'] as const) {
      if (typeof input[QUERY_PARAMS[name]] !== 'string' || input[QUERY_PARAMS[name]] === '') {
        throw new UsageError(`${shown(name, style)} is required`);
      }
    }
  }
  return input;
}

/** zod's issues as one sentence, each naming the input as the caller typed it. */
function issuesSentence(
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string; code: string; input?: unknown }>,
  style: NameStyle,
): string {
  return issues
    .map((issue) => {
      const name = NAME_OF_KEY.get(String(issue.path[0]));
      const where = name ? shown(name, style) : 'input';
      if (issue.code === 'invalid_type' && issue.input === undefined) return `${where} is required`;
      return `${where}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Which RunQueries answers a query: with --routes, the one of the ClickHouse target that holds the
 * query's organization (every query names one), otherwise the only one.
 */
export type QueryRouter = (organizationId: string | undefined) => RunQueries;

export const oneTarget =
  (queries: RunQueries): QueryRouter =>
  () =>
    queries;

/** Run one query on library input; what the CLI prints and the API returns. */
export function runQuery(router: QueryRouter, kind: QueryKind, input: Record<string, unknown>): Promise<unknown> {
  // A missing organization goes to the default target, whose filters reject it with a sentence.
  const queries = router(typeof input.organizationId === 'string' ? input.organizationId : undefined);
  switch (kind) {
    case 'list':
      return queries.list(input as never, { limit: input.limit as never, cursor: input.cursor as never });
    case 'count':
      return queries.count(input as never).then((count) => ({ count }));
    case 'stats':
      return queries.stats(input as never);
    case 'tags':
      return queries.tags(input as never);
  }
}
