/**
 * All configuration in one zod schema. Every setting can come from a CLI flag or an environment
 * variable (the flag wins); defaults and the reason for each live here. `loadConfig` validates at
 * start and turns any problem into one sentence per setting that names the flag and variable.
 */
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = (what: string) =>
  z.string().regex(IDENTIFIER, `${what} must be letters, digits and underscores, not starting with a digit`);
const positiveInt = z.coerce.number().int().positive();
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');

export const configSchema = z
  .object({
    /** Postgres holding "TaskRun" and task_run_v2; needs wal_level=logical. */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    /** ClickHouse server over HTTP. Absent: the embedded engine (chDB) at chdbPath. */
    clickhouseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
    /** chDB data directory when no CLICKHOUSE_URL is given; persistent so a restart resumes. */
    chdbPath: z.string().min(1).default('.runs-cdc/chdb'),
    clickhouseDatabase: identifier('the ClickHouse database').default('runs_cdc'),
    slot: identifier('the slot name').default('runs_cdc'),
    publication: identifier('the publication name').default('runs_cdc'),
    /** Flush when this many rows are buffered: ClickHouse prefers few large inserts. */
    batchRows: positiveInt.default(10_000),
    /** ...or this many bytes (estimated JSON size), so wide rows do not make huge inserts. */
    batchBytes: positiveInt.default(16 * 1024 * 1024),
    /** ...or when the oldest buffered row is this old: bounds replication lag when traffic is low. */
    flushIntervalMs: positiveInt.default(200),
    /** Stop reading the stream while buffered + in-flight rows exceed this: bounds memory. */
    maxBufferedRows: positiveInt.default(100_000),
    /** The same bound in estimated bytes: a few large payloads can weigh more than many rows. */
    maxBufferedBytes: positiveInt.default(128 * 1024 * 1024),
    /** Insert a flush's groups (one per ClickHouse target) one after another, or all at once. */
    flushGroups: z.enum(['sequential', 'parallel']).default('sequential'),
    /** Run ALTER TABLE ... REPLICA IDENTITY FULL instead of failing preflight. */
    fixReplicaIdentity: flag.default(false),
    /** Run without FULL identity (deletes carry only the id; unchanged TOAST is looked up). */
    allowPartialIdentity: flag.default(false),
    /** First retry delay after a transient ClickHouse failure; doubles up to retryMaxMs. */
    retryInitialMs: positiveInt.default(500),
    /** Cap on the retry delay, so recovery is noticed within this long after ClickHouse is back. */
    retryMaxMs: positiveInt.default(30_000),
    /** How often to check again while another process holds the slot. */
    standbyRetryMs: positiveInt.default(5_000),
    /** Unsolicited status updates to Postgres: well under the default wal_sender_timeout (60 s),
     * so the connection survives while reading is paused for backpressure or retries. */
    statusIntervalMs: positiveInt.default(10_000),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((c) => !(c.fixReplicaIdentity && c.allowPartialIdentity), {
    message: '--fix-replica-identity and --allow-partial-identity contradict each other: pick one',
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigKey = keyof Config;

/** Flag and environment variable of each setting. */
export const CONFIG_SOURCES: Record<ConfigKey, { flag: string; env: string; help: string }> = {
  databaseUrl: { flag: '--database-url', env: 'DATABASE_URL', help: 'Postgres URL (wal_level=logical)' },
  clickhouseUrl: { flag: '--clickhouse-url', env: 'CLICKHOUSE_URL', help: 'ClickHouse HTTP URL; omit for embedded chDB' },
  chdbPath: { flag: '--chdb-path', env: 'CHDB_PATH', help: 'chDB data directory (embedded ClickHouse)' },
  clickhouseDatabase: { flag: '--clickhouse-database', env: 'CLICKHOUSE_DATABASE', help: 'ClickHouse database' },
  slot: { flag: '--slot', env: 'RUNS_CDC_SLOT', help: 'logical replication slot name' },
  publication: { flag: '--publication', env: 'RUNS_CDC_PUBLICATION', help: 'publication name' },
  batchRows: { flag: '--batch-rows', env: 'RUNS_CDC_BATCH_ROWS', help: 'flush at this many buffered rows' },
  batchBytes: { flag: '--batch-bytes', env: 'RUNS_CDC_BATCH_BYTES', help: 'flush at this many buffered bytes' },
  flushIntervalMs: { flag: '--flush-interval-ms', env: 'RUNS_CDC_FLUSH_INTERVAL_MS', help: 'flush rows at most this old' },
  maxBufferedRows: { flag: '--max-buffered-rows', env: 'RUNS_CDC_MAX_BUFFERED_ROWS', help: 'pause reading above this many rows' },
  maxBufferedBytes: { flag: '--max-buffered-bytes', env: 'RUNS_CDC_MAX_BUFFERED_BYTES', help: 'pause reading above this many bytes' },
  flushGroups: { flag: '--flush-groups', env: 'RUNS_CDC_FLUSH_GROUPS', help: 'sequential | parallel' },
  fixReplicaIdentity: {
    flag: '--fix-replica-identity',
    env: 'RUNS_CDC_FIX_REPLICA_IDENTITY',
    help: 'set REPLICA IDENTITY FULL if missing',
  },
  allowPartialIdentity: {
    flag: '--allow-partial-identity',
    env: 'RUNS_CDC_ALLOW_PARTIAL_IDENTITY',
    help: 'run without FULL identity (degraded)',
  },
  retryInitialMs: { flag: '--retry-initial-ms', env: 'RUNS_CDC_RETRY_INITIAL_MS', help: 'first ClickHouse retry delay' },
  retryMaxMs: { flag: '--retry-max-ms', env: 'RUNS_CDC_RETRY_MAX_MS', help: 'longest ClickHouse retry delay' },
  standbyRetryMs: { flag: '--standby-retry-ms', env: 'RUNS_CDC_STANDBY_RETRY_MS', help: 'recheck a busy slot this often' },
  statusIntervalMs: { flag: '--status-interval-ms', env: 'RUNS_CDC_STATUS_INTERVAL_MS', help: 'status updates to Postgres' },
  logLevel: { flag: '--log-level', env: 'LOG_LEVEL', help: 'fatal | error | warn | info | debug | trace | silent' },
};

/** Merge flags over environment and validate. Throws ConfigError listing every problem. */
export function loadConfig(flags: Partial<Record<ConfigKey, unknown>> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const input: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(CONFIG_SOURCES) as Array<[ConfigKey, (typeof CONFIG_SOURCES)[ConfigKey]]>) {
    const value = flags[key] ?? (env[source.env] === '' ? undefined : env[source.env]);
    if (value !== undefined) input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const key = issue.path[0] as ConfigKey | undefined;
    const source = key ? CONFIG_SOURCES[key] : undefined;
    const where = source ? `${source.flag} (${source.env})` : 'configuration';
    const shown = key && input[key] !== undefined ? ` (got ${JSON.stringify(redact(String(input[key])))})` : '';
    return `${where}: ${issue.message}${shown}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

/** Hide a password in a URL before printing it. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]+:)[^@]*@/, '$1***@');
}

/** The settings a command needs, checked once it is known which command runs. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError('no Postgres to replicate from: set DATABASE_URL or --database-url (postgres://user@host:5432/db)');
  }
  return config.databaseUrl;
}
