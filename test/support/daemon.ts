/** Runs the real replication daemon in the test process against real Postgres and ClickHouse. */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterEach, beforeEach } from 'vitest';
import { slotGuardFor } from '../../src/cli/replicate.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { type Logger, silentLogger } from '../../src/logger.ts';
import { type DaemonOpsOptions, startDaemonOps } from '../../src/ops/daemon-ops.ts';
import type { OpsServer } from '../../src/ops/server.ts';
import type { DaemonObserver, ReplicationDaemon } from '../../src/replication/daemon.ts';
import { startReplication } from '../../src/replication/start.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { type Routing, RunsTargets } from '../../src/sink/targets.ts';
import { freshClickHouseDatabase, freshPostgres, type TestPostgres, testClickHouse, uniqueName } from './databases.ts';

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

/** What a test may plug into the daemon besides config: a logger to read, an observer (metrics),
 * other ClickHouse targets. */
export interface DaemonWiring {
  log?: Logger;
  observer?: DaemonObserver;
  routing?: Routing;
  /** Check the slot against ClickHouse's record of it, as `replicate` does (slot-guard.ts). */
  guardSlot?: boolean;
}

export async function startDaemon(
  pgdb: TestPostgres,
  ch: ClickHouseClient,
  database: string,
  overrides: Partial<Record<keyof Config, unknown>> = {},
  { log = silentLogger, observer, routing, guardSlot = false }: DaemonWiring = {},
): Promise<RunningDaemon> {
  const config = loadConfig(
    {
      databaseUrl: pgdb.url,
      clickhouseDatabase: database,
      slot: uniqueName('slot'),
      publication: 'runs_cdc',
      flushIntervalMs: 20,
      retryInitialMs: 50,
      retryMaxMs: 200,
      ...overrides,
    },
    {},
  );
  const table = RunsTable.fromConfig(ch, config, log);
  const guard = guardSlot ? slotGuardFor(config, ch, new RunsTargets(table, routing), log) : undefined;
  const replication = await startReplication(pgdb.url, config, table, log, observer, routing, guard);
  return { ...replication, table, config, caughtUp: () => replication.caughtUp(pgdb.sql) };
}

export interface PerTestEnvironment {
  pgdb: TestPostgres;
  /** The migrated ClickHouse database of the current test. */
  database: string;
  /** Start the daemon for the current test; it is stopped after the test. */
  start(overrides?: Partial<Record<keyof Config, unknown>>, wiring?: DaemonWiring): Promise<RunningDaemon>;
}

/** Registers hooks giving each test a fresh Postgres and ClickHouse database. */
export function freshEnvironmentPerTest(): PerTestEnvironment {
  let running: RunningDaemon | undefined;
  const env: PerTestEnvironment = {
    pgdb: undefined as unknown as TestPostgres,
    database: '',
    start: async (overrides = {}, wiring = {}) => {
      running = await startDaemon(env.pgdb, await testClickHouse(), env.database, overrides, wiring);
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

/** The daemon's ops port (metrics, health, the live page) on a free loopback port, as replicate serves it. */
export function startTestOps(
  replication: Pick<RunningDaemon, 'daemon' | 'config'>,
  clickhouse: ClickHouseClient,
  databaseUrl: string,
  more: Pick<DaemonOpsOptions, 'metrics'> & Partial<DaemonOpsOptions>,
): Promise<OpsServer> {
  return startDaemonOps({
    daemon: replication.daemon,
    clickhouse,
    databaseUrl,
    port: 0,
    host: '127.0.0.1',
    log: silentLogger,
    settings: replication.config,
    ...more,
  });
}
