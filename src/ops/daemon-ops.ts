/** Metrics and health endpoints for a running daemon (`replicate --metrics-port`). */
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { firstLine } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Lsn } from '../lsn.ts';
import type { SnapshotSource } from '../replication/snapshot.ts';
import { postgresConfig } from '../source/connection.ts';
import { currentWalLsn } from '../source/preflight.ts';
import type { DaemonMetrics } from './metrics.ts';
import { type OpsServer, startOpsServer } from './server.ts';

const CLICKHOUSE_PING_MS = 2_000;

export interface DaemonOpsOptions {
  metrics: DaemonMetrics;
  daemon: SnapshotSource;
  clickhouse: ClickHouseClient;
  databaseUrl: string;
  port: number;
  host: string;
  log: Logger;
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
  const server = await startOpsServer(metrics.registry, readiness, options.port, options.host, log);
  return {
    url: server.url,
    close: async () => {
      await server.close();
      await pool.end();
    },
  };
}
