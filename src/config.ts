/**
 * All configuration in one zod schema. Every setting can come from a CLI flag or an environment
 * variable (the flag wins); defaults and the reason for each live here. `loadConfig` validates at
 * start and turns any problem into one sentence per setting that names the flag and variable.
 */
import { z } from 'zod';
import { ConfigError } from './errors.ts';
import { redactSecrets } from './redact.ts';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = (what: string) =>
  z.string().regex(IDENTIFIER, `${what} must be letters, digits and underscores, not starting with a digit`);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().nonnegative();
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]).transform((v) => v === true || v === 'true' || v === '1');

export const configSchema = z
  .object({
    /** Postgres holding "TaskRun" and task_run_v2; needs wal_level=logical. */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .refine((url) => URL.canParse(url), 'is not a valid URL: postgres://user:password@host:5432/database')
      .optional(),
    /** ClickHouse server over HTTP. Absent: the embedded engine (chDB) at chdbPath. */
    clickhouseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
    /** TLS to an https:// ClickHouse: the CA that signed its certificate (PEM file; absent: the
     * system's CAs), and a client certificate and key (PEM files) for servers that want one. */
    clickhouseCaCert: z.string().min(1).optional(),
    clickhouseClientCert: z.string().min(1).optional(),
    clickhouseClientKey: z.string().min(1).optional(),
    /** chDB data directory when no CLICKHOUSE_URL is given; persistent so a restart resumes. */
    chdbPath: z.string().min(1).default('.runs-cdc/chdb'),
    clickhouseDatabase: identifier('the ClickHouse database').default('runs_cdc'),
    /** Create the tables ON CLUSTER (replicated, behind Distributed tables sharded by organization). */
    clickhouseCluster: identifier('the ClickHouse cluster').optional(),
    /** How long the client waits for one ClickHouse HTTP request. The server is told to stop a
     * query (max_execution_time, distributed_ddl_task_timeout) 10 s before this, so it gives up
     * first and nothing keeps running unseen; 300 s covers verify's and status' full FINAL scans. */
    clickhouseRequestTimeoutSeconds: z.coerce.number().int().min(20).default(300),
    /** Postgres' rule for slot names (ReplicationSlotValidateName): lower-case letters, digits
     * and underscores, at most 63 characters (NAMEDATALEN - 1); checked here, never truncated. */
    slot: z
      .string()
      .regex(/^[a-z0-9_]+$/, 'must be lower-case letters, digits and underscores (Postgres refuses anything else in a slot name)')
      .max(63, 'must be at most 63 characters (Postgres would cut a longer name)')
      .default('runs_cdc'),
    /** An identifier Postgres keeps whole: at most 63 characters. */
    publication: identifier('the publication name')
      .max(63, 'must be at most 63 characters (Postgres would cut a longer name)')
      .default('runs_cdc'),
    /** Flush when this many rows are buffered: ClickHouse prefers few large inserts. */
    batchRows: positiveInt.default(10_000),
    /** ...or this many bytes (of encoded rows, what the insert sends), so wide rows do not make huge inserts. */
    batchBytes: positiveInt.default(16 * 1024 * 1024),
    /** ...or when the oldest buffered row is this old: bounds replication lag when traffic is low. */
    flushIntervalMs: positiveInt.default(200),
    /** Stop reading the stream while buffered + in-flight rows exceed this: bounds memory. Three
     * full batches keep ClickHouse busy; more only holds memory (bench/run.ts huge transaction). */
    maxBufferedRows: positiveInt.default(30_000),
    /** The same bound in encoded bytes: a few large payloads can weigh more than many rows. */
    maxBufferedBytes: positiveInt.default(64 * 1024 * 1024),
    /** Insert a flush's groups (one per ClickHouse target) one after another, or all at once. */
    flushGroups: z.enum(['sequential', 'parallel']).default('sequential'),
    /** Run ALTER TABLE ... REPLICA IDENTITY FULL instead of failing preflight. */
    fixReplicaIdentity: flag.default(false),
    /** What a replicated TRUNCATE does: tombstone the table's earlier rows in ClickHouse, skip it
     * (logged), or stop the daemon before acknowledging it. */
    onTruncate: z.enum(['delete', 'ignore', 'fail'], { error: 'must be delete, ignore or fail' }).default('delete'),
    /** Run without FULL identity (deletes carry only the id; unchanged TOAST is looked up). */
    allowPartialIdentity: flag.default(false),
    /** When the slot is missing or invalidated while ClickHouse already holds replicated rows:
     * create it and repair the gap (a snapshot repair backfill) instead of refusing to start. */
    recreateSlot: flag.default(false),
    /** First retry delay after a transient ClickHouse failure; doubles up to retryMaxMs. */
    retryInitialMs: positiveInt.default(500),
    /** Cap on the retry delay, so recovery is noticed within this long after ClickHouse is back. */
    retryMaxMs: positiveInt.default(30_000),
    /** How often to check again while another process holds the slot. */
    standbyRetryMs: positiveInt.default(5_000),
    /** Write a tiny logical message (pg_logical_emit_message) this often, so the slot advances
     * while the published tables are idle: without WAL of its own database a walsender may not
     * move the slot however much WAL other databases write. Absent: off. */
    heartbeatIntervalMs: positiveInt.optional(),
    /** Unsolicited status updates to Postgres: well under the default wal_sender_timeout (60 s),
     * so the connection survives while reading is paused for backpressure or retries. */
    statusIntervalMs: positiveInt.default(10_000),
    /** `status` reports a slot that has had no consumer for longer than this: changes wait and
     * Postgres keeps their WAL. Ten minutes outlasts a deploy or a restart, not an outage. */
    slotMaxInactiveSeconds: positiveInt.default(600),
    /** `status` reports a slot that retains more WAL than this (bytes from its restart_lsn to
     * the server's current position): 1 GiB is far beyond what a keeping-up daemon holds and
     * well before a typical disk fills. */
    slotMaxRetainedWalBytes: positiveInt.default(1024 * 1024 * 1024),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Backfill tuning: a profile sets all of it (see BACKFILL_PROFILES); the settings below,
     * when given, override single values of it. */
    backfillProfile: z.enum(['default', 'smoke', 'ci', 'nightly']).default('default'),
    /** Rows per page (one SELECT ... LIMIT, one INSERT). */
    backfillChunkRows: positiveInt.max(1_000_000).optional(),
    /** Rows per second across all workers; 0 means no limit. */
    backfillRateLimit: nonNegativeInt.optional(),
    /** Sub-ranges of each table read in parallel. */
    backfillConcurrency: positiveInt.max(64).optional(),
    /** Write a checkpoint every this many pages. */
    backfillCheckpointEvery: positiveInt.optional(),
    /** Stop each table after this many rows; 0 means copy everything. */
    backfillMaxRows: nonNegativeInt.optional(),
    /** Retries of a failed ClickHouse write before the backfill fails (resumable): a one-off job
     * should end with FAILURE and a checkpoint rather than wait forever like the daemon does. */
    backfillRetries: nonNegativeInt.default(5),
    /** Send some organizations' runs to other ClickHouse targets (JSON, see RoutesConfig). */
    routes: z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({
            code: 'custom',
            message: 'must be JSON like {"targets":{"eu":{"url":"http://…","database":"runs"}},"organizations":{"org_1":"eu"}}',
          });
          return z.NEVER;
        }
      })
      .pipe(
        z
          .object({
            targets: z.record(
              z.string(),
              z
                .object({
                  url: z.url({ protocol: /^https?$/, error: 'must be an http(s):// URL' }).optional(),
                  database: identifier('a target database').optional(),
                })
                .strict(),
            ),
            organizations: z.record(z.string().min(1), z.string()),
          })
          .strict()
          .refine((r) => Object.keys(r.targets).every((name) => IDENTIFIER.test(name)), {
            message: 'a target name must be letters, digits and underscores, not starting with a digit',
          })
          // The daemon's own table is the target named "default"; a routed one must not replace it.
          .refine((r) => !('default' in r.targets), { message: 'the target name "default" is taken by the default ClickHouse' })
          .refine((r) => Object.values(r.organizations).every((t) => t in r.targets), {
            message: 'every organization must be routed to a target listed under "targets"',
          }),
      )
      .optional(),
    /** Run-list reads: max_execution_time, so one heavy query cannot hold the server. */
    queryTimeoutSeconds: positiveInt.default(10),
    /** Run-list reads: max_memory_usage in bytes. */
    queryMaxMemoryBytes: positiveInt.default(2 * 1024 * 1024 * 1024),
    /** Serve the read-only HTTP JSON API on this port (replicate, serve); absent: no API. */
    apiPort: z.coerce.number().int().min(0).max(65_535).optional(),
    /** Serve /metrics, /healthz and /readyz on this port (replicate, backfill); absent: not served. */
    metricsPort: z.coerce.number().int().min(0).max(65_535).optional(),
    /** Address the API and the metrics endpoint listen on: loopback unless told otherwise. */
    listenHost: z.string().min(1).default('127.0.0.1'),
    /** Bearer token the run-list API requires (and `runs --api-url` sends); absent: no token. */
    apiToken: z.string().min(16, 'must be at least 16 characters').optional(),
    /** Bearer token /metrics and /readyz require; absent: open (/healthz is always open). */
    metricsToken: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .refine((c) => c.queryTimeoutSeconds < c.clickhouseRequestTimeoutSeconds, {
    message: '--query-timeout must be shorter than --clickhouse-request-timeout, so ClickHouse stops a read before the client gives up',
    path: ['queryTimeoutSeconds'],
  })
  .refine((c) => !(c.fixReplicaIdentity && c.allowPartialIdentity), {
    message: '--fix-replica-identity and --allow-partial-identity contradict each other: pick one',
  });

export type Config = z.infer<typeof configSchema>;
export type ConfigKey = keyof Config;

/** Flag and environment variable of each setting. */
/** Where a setting comes from; `secret`: its value is never echoed, nor sent to a daemon's job. */
export interface ConfigSource {
  flag: string;
  env: string;
  help: string;
  secret?: true;
}

export const CONFIG_SOURCES: Record<ConfigKey, ConfigSource> = {
  databaseUrl: { flag: '--database-url', env: 'DATABASE_URL', help: 'Postgres URL (wal_level=logical)' },
  clickhouseUrl: { flag: '--clickhouse-url', env: 'CLICKHOUSE_URL', help: 'ClickHouse HTTP URL; omit for embedded chDB' },
  clickhouseCaCert: { flag: '--clickhouse-ca-cert', env: 'CLICKHOUSE_CA_CERT', help: 'PEM file of the CA of an https:// ClickHouse' },
  clickhouseClientCert: { flag: '--clickhouse-client-cert', env: 'CLICKHOUSE_CLIENT_CERT', help: 'PEM client certificate (mutual TLS)' },
  clickhouseClientKey: { flag: '--clickhouse-client-key', env: 'CLICKHOUSE_CLIENT_KEY', help: 'PEM client key (mutual TLS)' },
  chdbPath: { flag: '--chdb-path', env: 'CHDB_PATH', help: 'chDB data directory (embedded ClickHouse)' },
  clickhouseDatabase: { flag: '--clickhouse-database', env: 'CLICKHOUSE_DATABASE', help: 'ClickHouse database' },
  clickhouseCluster: { flag: '--cluster', env: 'CLICKHOUSE_CLUSTER', help: 'migrate ON CLUSTER as replicated + Distributed tables' },
  clickhouseRequestTimeoutSeconds: {
    flag: '--clickhouse-request-timeout',
    env: 'CLICKHOUSE_REQUEST_TIMEOUT',
    help: 'seconds to wait for one ClickHouse request (the server stops queries 10 s sooner)',
  },
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
  onTruncate: { flag: '--on-truncate', env: 'RUNS_CDC_ON_TRUNCATE', help: 'delete | ignore | fail' },
  allowPartialIdentity: {
    flag: '--allow-partial-identity',
    env: 'RUNS_CDC_ALLOW_PARTIAL_IDENTITY',
    help: 'run without FULL identity (degraded)',
  },
  recreateSlot: {
    flag: '--recreate-slot',
    env: 'RUNS_CDC_RECREATE_SLOT',
    help: 'recreate a missing or lost slot and repair the gap in ClickHouse',
  },
  retryInitialMs: { flag: '--retry-initial-ms', env: 'RUNS_CDC_RETRY_INITIAL_MS', help: 'first ClickHouse retry delay' },
  retryMaxMs: { flag: '--retry-max-ms', env: 'RUNS_CDC_RETRY_MAX_MS', help: 'longest ClickHouse retry delay' },
  standbyRetryMs: { flag: '--standby-retry-ms', env: 'RUNS_CDC_STANDBY_RETRY_MS', help: 'recheck a busy slot this often' },
  heartbeatIntervalMs: { flag: '--heartbeat-interval-ms', env: 'RUNS_CDC_HEARTBEAT_INTERVAL_MS', help: 'emit a WAL heartbeat this often' },
  statusIntervalMs: { flag: '--status-interval-ms', env: 'RUNS_CDC_STATUS_INTERVAL_MS', help: 'status updates to Postgres' },
  slotMaxInactiveSeconds: {
    flag: '--slot-max-inactive-seconds',
    env: 'RUNS_CDC_SLOT_MAX_INACTIVE_SECONDS',
    help: 'status: a slot without a consumer for longer is a problem',
  },
  slotMaxRetainedWalBytes: {
    flag: '--slot-max-retained-wal',
    env: 'RUNS_CDC_SLOT_MAX_RETAINED_WAL',
    help: 'status: a slot retaining more WAL bytes is a problem',
  },
  logLevel: { flag: '--log-level', env: 'LOG_LEVEL', help: 'fatal | error | warn | info | debug | trace | silent' },
  backfillProfile: { flag: '--profile', env: 'RUNS_CDC_BACKFILL_PROFILE', help: 'default | smoke | ci | nightly' },
  backfillChunkRows: { flag: '--chunk-rows', env: 'RUNS_CDC_BACKFILL_CHUNK_ROWS', help: 'rows per page' },
  backfillRateLimit: { flag: '--rate-limit', env: 'RUNS_CDC_BACKFILL_RATE_LIMIT', help: 'rows/s across workers, 0 = none' },
  backfillConcurrency: { flag: '--concurrency', env: 'RUNS_CDC_BACKFILL_CONCURRENCY', help: 'parallel sub-ranges per table' },
  backfillCheckpointEvery: {
    flag: '--checkpoint-every',
    env: 'RUNS_CDC_BACKFILL_CHECKPOINT_EVERY',
    help: 'pages between checkpoints',
  },
  backfillMaxRows: { flag: '--max-rows', env: 'RUNS_CDC_BACKFILL_MAX_ROWS', help: 'stop each table after this many rows, 0 = all' },
  backfillRetries: { flag: '--retries', env: 'RUNS_CDC_BACKFILL_RETRIES', help: 'ClickHouse write retries before FAILURE' },
  routes: { flag: '--routes', env: 'RUNS_CDC_ROUTES', help: 'JSON: organizations routed to other ClickHouse targets' },
  queryTimeoutSeconds: { flag: '--query-timeout', env: 'RUNS_CDC_QUERY_TIMEOUT', help: 'seconds a run-list read may take' },
  queryMaxMemoryBytes: { flag: '--query-max-memory', env: 'RUNS_CDC_QUERY_MAX_MEMORY', help: 'bytes a run-list read may use' },
  apiPort: { flag: '--api-port', env: 'RUNS_CDC_API_PORT', help: 'serve the read-only HTTP JSON API on this port' },
  metricsPort: { flag: '--metrics-port', env: 'RUNS_CDC_METRICS_PORT', help: 'serve /metrics, /healthz, /readyz on this port' },
  listenHost: { flag: '--listen-host', env: 'RUNS_CDC_LISTEN_HOST', help: 'address the API and metrics listen on (default 127.0.0.1)' },
  apiToken: {
    flag: '--api-token',
    env: 'RUNS_CDC_API_TOKEN',
    help: 'bearer token the API requires (at least 16 characters)',
    secret: true,
  },
  metricsToken: { flag: '--metrics-token', env: 'RUNS_CDC_METRICS_TOKEN', help: 'bearer token /metrics and /readyz require', secret: true },
};

export type BackfillProfile = Config['backfillProfile'];

export interface BackfillTuning {
  chunkRows: number;
  rateLimit: number;
  concurrency: number;
  checkpointEvery: number;
  maxRows: number;
}

/** What each backfill profile sets, and why. */
export const BACKFILL_PROFILES: Record<BackfillProfile, BackfillTuning & { reason: string }> = {
  default: {
    chunkRows: 5_000,
    rateLimit: 0,
    concurrency: 1,
    checkpointEvery: 10,
    maxRows: 0,
    reason:
      'one reader per table, reading one page ahead of its inserts, leaves the primary mostly idle, so no rate cap; 5,000-row pages make inserts large enough for ClickHouse; a checkpoint every 10 pages (a few seconds of work) costs a tenth of one per page, and a resume after a crash redoes at most those pages (a failure or Ctrl-C records every written page)',
  },
  smoke: {
    chunkRows: 1_000,
    rateLimit: 5_000,
    concurrency: 1,
    checkpointEvery: 1,
    maxRows: 10_000,
    reason:
      'a first try on a new environment: at most 10,000 rows per table at 5,000 rows/s proves the whole path (read, transform, insert, checkpoint) in seconds while touching little',
  },
  ci: {
    chunkRows: 1_000,
    rateLimit: 0,
    concurrency: 2,
    checkpointEvery: 1,
    maxRows: 0,
    reason:
      'throwaway databases with small tables: small pages and two sub-ranges per table exercise paging, range splitting and checkpoints, and nothing needs protecting',
  },
  nightly: {
    chunkRows: 10_000,
    rateLimit: 20_000,
    concurrency: 4,
    checkpointEvery: 10,
    maxRows: 0,
    reason:
      'large tables off-peak: four sub-ranges and big pages for throughput, capped at 20,000 rows/s so the primary keeps serving, a checkpoint every 10 pages keeps the checkpoint table small',
  },
};

/** The config key of each backfill tuning value (its flag, its variable). */
export const BACKFILL_TUNING_KEYS = {
  chunkRows: 'backfillChunkRows',
  rateLimit: 'backfillRateLimit',
  concurrency: 'backfillConcurrency',
  checkpointEvery: 'backfillCheckpointEvery',
  maxRows: 'backfillMaxRows',
} as const satisfies Record<keyof BackfillTuning, ConfigKey>;

/** The profile's tuning with explicitly given settings over it. */
export function backfillTuning(config: Config): BackfillTuning {
  const profile = BACKFILL_PROFILES[config.backfillProfile];
  const entries = Object.entries(BACKFILL_TUNING_KEYS) as Array<[keyof BackfillTuning, ConfigKey]>;
  return Object.fromEntries(
    entries.map(([name, key]) => [name, (config[key] as number | undefined) ?? profile[name]]),
  ) as unknown as BackfillTuning;
}

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
    const shown = key && input[key] !== undefined && !source?.secret ? ` (got ${JSON.stringify(redact(String(input[key])))})` : '';
    return `${where}: ${issue.message}${shown}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

/** Hide the secrets of a URL (or any text) before printing it: see redact.ts. */
export const redact = redactSecrets;

/** The settings a command needs, checked once it is known which command runs. */
export function requireDatabaseUrl(config: Config): string {
  if (!config.databaseUrl) {
    throw new ConfigError('no Postgres to replicate from: set DATABASE_URL or --database-url (postgres://user@host:5432/db)');
  }
  return config.databaseUrl;
}
