/**
 * `runs-cdc/queries`: the run list and its analytics over the replicated table, for a web app.
 * Give RunQueries a ClickHouse client (`@clickhouse/client`'s `createClient`, or
 * `connectClickHouse` from `runs-cdc/replication`) and the database runs-cdc migrated.
 */
export { QueryInputError, RUN_STATUSES, type RunFiltersInput, type RunStatus } from './filters.ts';
export { type RunningApi, startApi } from './http-api.ts';
export { oneTarget, type QueryRouter } from './params.ts';
export {
  MAX_LIST_LIMIT,
  MAX_TAGS_LIMIT,
  QueryError,
  type QueryLimits,
  type RunListItem,
  type RunListPage,
  RunQueries,
  type RunStats,
  type StatusBucket,
  type TagsInput,
  type TagsPage,
  type TaskAggregate,
} from './run-queries.ts';
