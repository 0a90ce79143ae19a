import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startPostgres } from '../../src/embedded/postgres.ts';

/** Tests run the CLI as it ships, `bin/runs-cdc.js` over the compiled `dist/`: compile the sources under test first. */
function build(): void {
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: new URL('../..', import.meta.url), stdio: 'inherit' });
}

/**
 * The servers of the run, once: `DATABASE_URL` / `CLICKHOUSE_URL` when set; real servers in
 * Docker with `RUNS_CDC_TESTCONTAINERS=1`; otherwise a private Postgres and, per test file,
 * in-process chDB. The choice is printed, so a run says which paths it did not take.
 */
/** The ClickHouse server versions runs-cdc supports and CI runs the suite on (README, "Against
 * real servers"); docker-compose.yml pins the newest. 24.8 is also @clickhouse/client's floor. */
export const SUPPORTED_CLICKHOUSE_SERVERS = ['24.8', '25.8'] as const;

/** RUNS_CDC_CLICKHOUSE_VERSION picks one of them for the container (default the oldest). */
function clickhouseServerVersion(): string {
  const wanted = process.env.RUNS_CDC_CLICKHOUSE_VERSION ?? SUPPORTED_CLICKHOUSE_SERVERS[0];
  if (!(SUPPORTED_CLICKHOUSE_SERVERS as readonly string[]).includes(wanted)) {
    throw new Error(`RUNS_CDC_CLICKHOUSE_VERSION=${wanted} is not one of the supported ${SUPPORTED_CLICKHOUSE_SERVERS.join(', ')}`);
  }
  return wanted;
}

export default async function setup(project: TestProject) {
  build();
  const stops: Array<() => Promise<unknown>> = [];
  let databaseUrl = process.env.DATABASE_URL;
  let clickhouseUrl = process.env.CLICKHOUSE_URL ?? '';
  if (process.env.RUNS_CDC_TESTCONTAINERS === '1') {
    const { GenericContainer, Wait } = await import('testcontainers');
    if (!databaseUrl) {
      const postgres = await new GenericContainer('postgres:16')
        .withEnvironment({ POSTGRES_PASSWORD: 'postgres' })
        .withCommand(['postgres', '-c', 'wal_level=logical', '-c', 'max_replication_slots=20', '-c', 'max_wal_senders=20'])
        .withExposedPorts(5432)
        .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
        .start();
      stops.push(() => postgres.stop());
      databaseUrl = `postgres://postgres:postgres@${postgres.getHost()}:${postgres.getMappedPort(5432)}/postgres`;
    }
    if (!clickhouseUrl) {
      const clickhouse = await new GenericContainer(`clickhouse/clickhouse-server:${clickhouseServerVersion()}`)
        // TZ: the server's time zone (RUNS_CDC_CLICKHOUSE_TZ, e.g. Asia/Kolkata), UTC by default.
        .withEnvironment({
          CLICKHOUSE_PASSWORD: 'test',
          CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1',
          TZ: process.env.RUNS_CDC_CLICKHOUSE_TZ ?? 'UTC',
        })
        .withExposedPorts(8123)
        .withWaitStrategy(Wait.forHttp('/ping', 8123))
        .start();
      stops.push(() => clickhouse.stop());
      clickhouseUrl = `http://default:test@${clickhouse.getHost()}:${clickhouse.getMappedPort(8123)}`;
    }
  }
  if (!databaseUrl) {
    const server = await startPostgres();
    stops.push(() => server.stop());
    databaseUrl = server.url;
  }
  project.provide('databaseUrl', databaseUrl);
  project.provide('clickhouseUrl', clickhouseUrl);
  const pgKind = process.env.DATABASE_URL
    ? 'DATABASE_URL'
    : process.env.RUNS_CDC_TESTCONTAINERS === '1'
      ? 'postgres:16 container'
      : 'private cluster';
  const chKind = clickhouseUrl
    ? 'ClickHouse server over HTTP'
    : 'in-process chDB (HTTP path not exercised: set CLICKHOUSE_URL or RUNS_CDC_TESTCONTAINERS=1)';
  process.stdout.write(`integration tests use Postgres: ${pgKind}; ClickHouse: ${chKind}\n`);
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** Empty for in-process chDB. */
    clickhouseUrl: string;
  }
}
