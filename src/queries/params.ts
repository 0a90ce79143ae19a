import type { RunQueries } from './run-queries.ts';

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

/** Library input from named values; repeated names become lists, `root-only` a boolean. */
export function queryInput(values: Iterable<[string, string | string[] | boolean]>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [name, value] of values) {
    const key = QUERY_PARAMS[name as QueryParamName];
    if (key === undefined) continue;
    if (key === 'rootOnly') input[key] = value === true || value === 'true' || value === '1' || value === '';
    else if (Array.isArray(value)) input[key] = value.length === 1 ? value[0] : value;
    else input[key] = value;
  }
  return input;
}

/** The four queries, by the name the CLI uses and the path the HTTP API serves them on. */
export const QUERY_PATHS = { list: '/runs', count: '/runs/count', stats: '/runs/stats', tags: '/runs/tags' } as const;
export type QueryKind = keyof typeof QUERY_PATHS;

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
