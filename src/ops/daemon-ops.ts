/** Metrics and health endpoints for a running daemon (`replicate --metrics-port`). */
import type http from 'node:http';
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { CheckpointStore } from '../backfill/checkpoints.ts';
import { type Config, redact } from '../config.ts';
import { firstLine } from '../errors.ts';
import { type Logger, silentLogger } from '../logger.ts';
import { formatLsn, type Lsn } from '../lsn.ts';
import type { QueryRouter } from '../queries/params.ts';
import type { SnapshotSource } from '../replication/snapshot.ts';
import { currentWalLsn } from '../source/catalog.ts';
import { postgresConfig } from '../source/connection.ts';
import { registerHealthMetrics } from './health-metrics.ts';
import { type LiveBackfillJob, startLivePage } from './live.ts';
import type { DaemonMetrics } from './metrics.ts';
import { type OpsServer, startOpsServer } from './server.ts';

const CLICKHOUSE_PING_MS = 2_000;
/** The live page's static files: open even with a token (they hold no data). */
const STATIC_PATHS = ['/', '/assets/'];
/** What shows runs or runs commands: the page's data, the explorer's queries, the jobs. */
const isDataPath = (path: string): boolean => path === '/live.json' || path === '/jobs' || path === '/runs' || path.startsWith('/runs/');

export interface DaemonOpsOptions {
  metrics: DaemonMetrics;
  daemon: SnapshotSource;
  clickhouse: ClickHouseClient;
  databaseUrl: string;
  port: number;
  host: string;
  log: Logger;
  settings: Pick<Config, 'slot' | 'clickhouseDatabase' | 'maxBufferedRows' | 'maxBufferedBytes'>;
  /** The run-list queries for the live page's explorer (replicate opens them). */
  queries?: QueryRouter;
  /** How often the live page samples the metrics (default live.ts SAMPLE_EVERY_MS). */
  sampleEveryMs?: number;
  /** More routes on the same port (replicate: the jobs it runs for clients, cli/jobs.ts). */
  routes?: (request: http.IncomingMessage, response: http.ServerResponse) => Promise<boolean>;
  /** Bearer token every path but /healthz and the page's static files requires, when set. */
  token?: string;
  /** With no `token`, the bearer token the page's data, the explorer and /jobs require (--api-token). */
  dataToken?: string;
}

/** The most recently changed backfill jobs for the live page (their messages with any URL password masked). */
async function recentBackfillJobs(store: CheckpointStore): Promise<LiveBackfillJob[]> {
  const jobs = await store.listJobs(5, 'updated');
  return jobs.map((j) => ({
    jobId: j.jobId,
    status: j.status,
    rowsCopied: j.rowsCopied,
    message: redact(j.message),
    updatedAt: j.updatedAt,
  }));
}

export async function startDaemonOps(options: DaemonOpsOptions): Promise<OpsServer> {
  const { metrics, daemon, clickhouse, log } = options;
  // One ordinary connection, opened when scraped, for the server's WAL end.
  const pool = new pg.Pool(
    postgresConfig(options.databaseUrl, { max: 1, idleTimeoutMillis: 30_000, application_name: 'runs-cdc metrics' }),
  );
  pool.on('error', () => {});
  const serverWalEnd = (): Promise<Lsn | undefined> => currentWalLsn(pool).catch(() => undefined);
  metrics.attach({ replication: daemon, serverWalEnd });
  const readiness = {
    problems: async () => {
      const problems: string[] = [];
      const snapshot = daemon.snapshot();
      if (!snapshot.streaming) problems.push('not streaming from the replication slot');
      if (snapshot.repairingGap) problems.push('repairing the gap after the replication slot was recreated (--recreate-slot)');
      const ping = clickhouse.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json());
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 2 s')), CLICKHOUSE_PING_MS).unref());
      try {
        await Promise.race([ping, timeout]);
      } catch (error) {
        problems.push(`ClickHouse does not answer: ${firstLine(error)}`);
      }
      return problems;
    },
    degraded: async () =>
      Object.entries(daemon.snapshot().stats.degradedIdentity).map(
        ([table, identity]) =>
          `${table} is replicated without REPLICA IDENTITY FULL (${identity}): deletes carry only the id and unchanged TOASTed values are looked up in ClickHouse; run ALTER TABLE "${table}" REPLICA IDENTITY FULL`,
      ),
  };
  const { settings } = options;
  registerHealthMetrics(metrics.registry, {
    pool,
    slot: settings.slot,
    clickhouse,
    clickhouseDatabase: settings.clickhouseDatabase,
    readinessProblems: readiness.problems,
    bufferLimits: { rows: settings.maxBufferedRows, bytes: settings.maxBufferedBytes },
  });
  // The page reads the jobs as often as it is polled: no retries, a failure shows no jobs.
  const jobs = new CheckpointStore(
    clickhouse,
    settings.clickhouseDatabase,
    { initialDelayMs: 100, maxDelayMs: 100, maxRetries: 0 },
    silentLogger,
  );
  const page = startLivePage({
    registry: metrics.registry,
    identity: () => ({
      slot: settings.slot,
      confirmedLsn: formatLsn(daemon.snapshot().confirmedLsn),
      maxBufferedRows: settings.maxBufferedRows,
      maxBufferedBytes: settings.maxBufferedBytes,
    }),
    readinessProblems: readiness.problems,
    backfillJobs: () => recentBackfillJobs(jobs),
    queries: options.queries,
    sampleEveryMs: options.sampleEveryMs,
    log,
  });
  const routes = options.routes;
  // Without a metrics token, the page's data, the explorer and the jobs still obey --api-token:
  // they show runs and run commands, unlike /metrics and the page's static files.
  const server = await startOpsServer(metrics.registry, readiness, options.port, options.host, log, options.token, {
    openPaths: STATIC_PATHS,
    methods: ['POST'],
    dataToken: options.dataToken === undefined ? undefined : { token: options.dataToken, flag: '--api-token', covers: isDataPath },
    handle: async (request, response) =>
      (await page.handle(request, response)) || (routes !== undefined && (await routes(request, response))),
  });
  return {
    url: server.url,
    close: async () => {
      page.close();
      await server.close();
      await pool.end();
    },
  };
}
