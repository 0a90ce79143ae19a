/** Runs the real replication daemon in the test process against real Postgres and ClickHouse. */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterEach, beforeEach } from 'vitest';
import { type Config, loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { parseLsn } from '../../src/lsn.ts';
import { ReplicationDaemon } from '../../src/replication/daemon.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import {
  currentWalLsn,
  freshClickHouseDatabase,
  freshPostgres,
  type TestPostgres,
  testClickHouse,
  uniqueName,
  waitFor,
} from './databases.ts';

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

export interface PerTestEnvironment {
  pgdb: TestPostgres;
  /** The migrated ClickHouse database of the current test. */
  database: string;
  /** Start the daemon for the current test; it is stopped after the test. */
  start(overrides?: Partial<Record<keyof Config, unknown>>): Promise<RunningDaemon>;
}

/** Registers hooks giving each test a fresh Postgres and ClickHouse database. */
export function freshEnvironmentPerTest(): PerTestEnvironment {
  let running: RunningDaemon | undefined;
  const env: PerTestEnvironment = {
    pgdb: undefined as unknown as TestPostgres,
    database: '',
    start: async (overrides = {}) => {
      running = await startDaemon(env.pgdb, await testClickHouse(), env.database, overrides);
      return running;
    },
  };
  beforeEach(async () => {
    env.pgdb = await freshPostgres();
    env.database = await freshClickHouseDatabase(await testClickHouse());
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    await env.pgdb.close();
  });
  return env;
}
