/** Runs the real replication daemon in the test process against real Postgres and ClickHouse. */
import type { ClickHouseClient } from '@clickhouse/client';
import { type Config, loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { parseLsn } from '../../src/lsn.ts';
import { ReplicationDaemon } from '../../src/replication/daemon.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { currentWalLsn, type TestPostgres, uniqueName, waitFor } from './databases.ts';

export interface RunningDaemon {
  daemon: ReplicationDaemon;
  table: RunsTable;
  config: Config;
  /** The promise of daemon.run(): resolves after stop(), rejects on a fatal error. */
  running: Promise<void>;
  /** Wait until everything committed so far in Postgres is confirmed (hence in ClickHouse). */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

export async function startDaemon(
  pgdb: TestPostgres,
  ch: ClickHouseClient,
  database: string,
  overrides: Partial<Record<keyof Config, unknown>> = {},
): Promise<RunningDaemon> {
  const config = loadConfig(
    {
      databaseUrl: pgdb.url,
      slot: uniqueName('slot'),
      publication: 'runs_cdc',
      flushIntervalMs: 20,
      retryInitialMs: 50,
      retryMaxMs: 200,
      ...overrides,
    },
    {},
  );
  const table = new RunsTable(ch, database, { initialDelayMs: config.retryInitialMs, maxDelayMs: config.retryMaxMs }, silentLogger);
  const daemon = new ReplicationDaemon(pgdb.url, config, table, silentLogger);
  const running = daemon.run();
  running.catch(() => {}); // observed by the tests that expect a failure
  await Promise.race([daemon.ready, running]);
  return {
    daemon,
    table,
    config,
    running,
    caughtUp: async () => {
      const target = parseLsn(await currentWalLsn(pgdb.sql));
      await waitFor('the daemon to confirm the current WAL position', () => daemon.confirmedLsn >= target);
    },
    stop: async () => {
      await daemon.stop();
      await running.catch(() => {});
    },
  };
}
