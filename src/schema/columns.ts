/**
 * The one column mapping between the Postgres runs tables ("TaskRun", task_run_v2: same columns)
 * and the ClickHouse table. The transform reads it to build rows, the sink to name the insert's
 * columns, and preflight to check the migrated table has exactly these columns and types.
 */

/** How a column's text (pgoutput sends every value as text) becomes a ClickHouse value. */
export type ColumnKind = 'text' | 'int' | 'float' | 'bool' | 'timestamp' | 'json' | 'textArray';

export interface ColumnMapping {
  /** Column name in Postgres (camelCase, as the platform's Prisma schema names it). */
  readonly source: string;
  /** Column name in ClickHouse (snake_case). */
  readonly target: string;
  readonly kind: ColumnKind;
  /** Nullable in ClickHouse. Non-nullable columns get the kind's empty value for a SQL NULL. */
  readonly nullable: boolean;
  /** Few distinct values: stored as LowCardinality. */
  readonly lowCardinality?: boolean;
}

const col = (source: string, target: string, kind: ColumnKind, nullable: boolean, lowCardinality = false): ColumnMapping => ({
  source,
  target,
  kind,
  nullable,
  lowCardinality,
});

export const SOURCE_COLUMNS: readonly ColumnMapping[] = [
  col('id', 'run_id', 'text', false),
  col('number', 'number', 'int', false),
  col('friendlyId', 'friendly_id', 'text', false),
  col('engine', 'engine', 'text', false, true),
  col('status', 'status', 'text', false, true),
  col('statusReason', 'status_reason', 'text', true),
  col('idempotencyKey', 'idempotency_key', 'text', true),
  col('idempotencyKeyExpiresAt', 'idempotency_key_expires_at', 'timestamp', true),
  col('idempotencyKeyOptions', 'idempotency_key_options', 'json', true),
  col('taskIdentifier', 'task_identifier', 'text', false),
  col('isTest', 'is_test', 'bool', false),
  col('payload', 'payload', 'text', false),
  col('payloadType', 'payload_type', 'text', false, true),
  col('context', 'context', 'json', true),
  col('traceContext', 'trace_context', 'json', true),
  col('traceId', 'trace_id', 'text', false),
  col('spanId', 'span_id', 'text', false),
  col('runtimeEnvironmentId', 'environment_id', 'text', false),
  col('environmentType', 'environment_type', 'text', true, true),
  col('projectId', 'project_id', 'text', false),
  col('organizationId', 'organization_id', 'text', false),
  col('queue', 'queue', 'text', false),
  col('lockedQueueId', 'locked_queue_id', 'text', true),
  col('masterQueue', 'worker_queue', 'text', false),
  col('region', 'region', 'text', true, true),
  col('attemptNumber', 'attempt_number', 'int', true),
  col('createdAt', 'created_at', 'timestamp', false),
  col('updatedAt', 'updated_at', 'timestamp', false),
  col('runTags', 'tags', 'textArray', false),
  col('taskVersion', 'task_version', 'text', true),
  col('sdkVersion', 'sdk_version', 'text', true),
  col('cliVersion', 'cli_version', 'text', true),
  col('startedAt', 'started_at', 'timestamp', true),
  col('executedAt', 'executed_at', 'timestamp', true),
  col('completedAt', 'completed_at', 'timestamp', true),
  col('machinePreset', 'machine_preset', 'text', true, true),
  col('usageDurationMs', 'usage_duration_ms', 'int', false),
  col('costInCents', 'cost_in_cents', 'float', false),
  col('baseCostInCents', 'base_cost_in_cents', 'float', false),
  col('lockedAt', 'locked_at', 'timestamp', true),
  col('lockedById', 'locked_by_id', 'text', true),
  col('priorityMs', 'priority_ms', 'int', false),
  col('concurrencyKey', 'concurrency_key', 'text', true),
  col('delayUntil', 'delay_until', 'timestamp', true),
  col('queuedAt', 'queued_at', 'timestamp', true),
  col('ttl', 'ttl', 'text', true),
  col('expiredAt', 'expired_at', 'timestamp', true),
  col('maxAttempts', 'max_attempts', 'int', true),
  col('scheduleId', 'schedule_id', 'text', true),
  col('bulkActionGroupIds', 'bulk_action_group_ids', 'textArray', false),
  col('rootTaskRunId', 'root_run_id', 'text', true),
  col('parentTaskRunId', 'parent_run_id', 'text', true),
  col('batchId', 'batch_id', 'text', true),
  col('depth', 'depth', 'int', false),
  col('metadata', 'metadata', 'text', true),
  col('metadataType', 'metadata_type', 'text', false, true),
  col('output', 'output', 'text', true),
  col('outputType', 'output_type', 'text', false, true),
  col('error', 'error', 'json', true),
  col('maxDurationInSeconds', 'max_duration_in_seconds', 'int', true),
  col('queueTimestamp', 'queue_timestamp', 'timestamp', true),
  col('annotations', 'annotations', 'json', true),
  col('planType', 'plan_type', 'text', true, true),
  col('isWarmStart', 'is_warm_start', 'bool', true),
];

/** Columns runs-cdc adds to every row. */
export const SOURCE_TABLE_COLUMN = 'source_table';
export const VERSION_COLUMN = '_version';
export const DELETED_COLUMN = '_is_deleted';

/** The ClickHouse sort key, in source (Postgres) column names. An update that changes one of these
 * moves the row: the old key gets a tombstone. */
export const SORT_KEY_SOURCE_COLUMNS = ['organizationId', 'projectId', 'runtimeEnvironmentId', 'createdAt', 'id'] as const;

/** The Postgres tables runs-cdc replicates, by their unquoted names. */
export const SOURCE_TABLES = ['TaskRun', 'task_run_v2'] as const;
export type SourceTable = (typeof SOURCE_TABLES)[number];

export function isSourceTable(name: string): name is SourceTable {
  return (SOURCE_TABLES as readonly string[]).includes(name);
}

const BASE_TYPE: Record<ColumnKind, string> = {
  text: 'String',
  int: 'Int32',
  float: 'Float64',
  bool: 'Bool',
  timestamp: "DateTime64(3, 'UTC')",
  json: 'String', // raw JSON text, byte for byte: no parse can fail or lose precision on the way in
  textArray: 'Array(String)',
};

/** The ClickHouse type of a mapped column, as `system.columns` prints it. */
export function clickhouseType(column: ColumnMapping): string {
  let type = BASE_TYPE[column.kind];
  if (column.nullable) type = `Nullable(${type})`;
  if (column.lowCardinality) type = `LowCardinality(${type})`;
  return type;
}

/** Every column of the ClickHouse table with its type, in insert order. */
export const TARGET_COLUMNS: ReadonlyArray<{ name: string; type: string }> = [
  ...SOURCE_COLUMNS.map((c) => ({ name: c.target, type: clickhouseType(c) })),
  { name: SOURCE_TABLE_COLUMN, type: 'LowCardinality(String)' },
  { name: VERSION_COLUMN, type: 'UInt128' },
  { name: DELETED_COLUMN, type: 'UInt8' },
];
