/**
 * Real Postgres and ClickHouse for integration tests: a fresh Postgres database (with the runs
 * tables) and a fresh ClickHouse database (migrated) per test, so tests never see each other.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { inject } from 'vitest';
import { type RunningPostgres, type StartPostgresOptions, startPostgres } from '../../src/embedded/postgres.ts';
import { type Lsn, parseLsn } from '../../src/lsn.ts';
import { connectClickHouse } from '../../src/sink/clickhouse.ts';
import { migrate } from '../../src/sink/migrations.ts';
import { readSlot } from '../../src/source/catalog.ts';
import { createRunsTables } from '../../src/source/schema.ts';

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

export interface TestPostgres {
  url: string;
  sql: pg.Client;
  database: string;
  /** Drops slots made for this database and closes the connection. */
  close(): Promise<void>;
}

/** URL of the same server with another database name. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A new database with the runs tables. `createOptions` go to CREATE DATABASE, e.g.
 * `TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'` for production's collation.
 */
export async function freshPostgres(baseUrl: string = inject('databaseUrl'), tables = true, createOptions = ''): Promise<TestPostgres> {
  const database = uniqueName('runs');
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database} ${createOptions}`);
  await admin.end();
  const url = withDatabase(baseUrl, database);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  if (tables) await createRunsTables(sql);
  const pgdb: TestPostgres = {
    url,
    sql,
    database,
    // pgdb.sql, not sql: a test may replace the connection (after a server restart).
    close: async () => {
      await pgdb.sql.query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`,
      );
      await pgdb.sql.end();
    },
  };
  return pgdb;
}

/**
 * A Postgres server of the test's own, with a fresh database: nothing else writes WAL there, and
 * the test may restart or misconfigure it. Both are gone when `use` ends.
 */
export async function withOwnPostgres<T>(
  use: (pgdb: TestPostgres, server: RunningPostgres) => Promise<T>,
  options?: StartPostgresOptions,
): Promise<T> {
  const server = await startPostgres(options);
  try {
    const pgdb = await freshPostgres(server.url);
    try {
      return await use(pgdb, server);
    } finally {
      await pgdb.close();
    }
  } finally {
    await server.stop();
  }
}

/** Terminate the walsender streaming `slot`, once a process holds it: its daemon must reconnect. */
export async function terminateWalsender(sql: pg.ClientBase, slot: string): Promise<void> {
  const pid = await waitFor('a process to hold the slot', async () => (await readSlot(sql, slot))?.activePid ?? undefined);
  await sql.query('SELECT pg_terminate_backend($1)', [pid]);
}

let shared: Promise<ClickHouseClient> | undefined;

/** The run's ClickHouse server when there is one, otherwise in-process chDB (one per test file:
 * vitest forks). */
/** The ClickHouse server the run uses (global-setup.ts), or undefined for in-process chDB. */
export function clickhouseUrl(): string | undefined {
  return inject('clickhouseUrl') || undefined;
}

export function testClickHouse(): Promise<ClickHouseClient> {
  shared ??= connectClickHouse({ url: clickhouseUrl(), chdbPath: ':memory:' });
  return shared;
}

export async function freshClickHouseDatabase(client: ClickHouseClient): Promise<string> {
  const database = uniqueName('runs');
  await migrate(client, database);
  return database;
}

/**
 * Make the runs table of `database` refuse inserts (TOO_MANY_PARTS, transient: runs-cdc retries it)
 * or accept them again. Refusal needs one part already in the partition written to.
 */
export async function refuseInserts(client: ClickHouseClient, database: string, refuse: boolean): Promise<void> {
  await client.command({ query: `ALTER TABLE ${database}.task_runs_v2 MODIFY SETTING parts_to_throw_insert = ${refuse ? 1 : 3000}` });
}

/** Runs in `database`'s runs table as queries see them: FINAL, tombstones excluded. */
export async function liveRunCount(client: ClickHouseClient, database: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(client, `SELECT count() AS n FROM ${database}.task_runs_v2 FINAL WHERE _is_deleted = 0`);
  return Number(row?.n);
}

export async function queryRows<T = Record<string, unknown>>(
  client: ClickHouseClient,
  query: string,
  query_params: Record<string, unknown> = {},
): Promise<T[]> {
  const result = await client.query({ query, query_params, format: 'JSONEachRow' });
  return result.json<T>();
}

/** The slot's confirmed_flush_lsn, as Postgres reports it. */
export async function slotConfirmedLsn(sql: pg.ClientBase, slot: string): Promise<Lsn> {
  const state = await readSlot(sql, slot);
  if (!state?.confirmedFlushLsn) throw new Error(`slot ${slot} does not exist or has no confirmed LSN`);
  return parseLsn(state.confirmedFlushLsn);
}

export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Wait until a process holds the slot (`active`), or until none does. */
export async function waitForSlot(sql: pg.ClientBase, slot: string, active: boolean): Promise<void> {
  await waitFor(`the slot to be ${active ? 'held' : 'released'}`, async () => (await readSlot(sql, slot))?.active === active);
}

/**
 * How many pgoutput messages of one kind (`I` insert, `T` truncate) an inactive slot still holds:
 * changes not confirmed. Robust where comparing LSNs is not, because idle keepalives may move a
 * slot over other databases' WAL at any time.
 */
export async function unconfirmedInSlot(sql: pg.ClientBase, slot: string, kind: 'I' | 'T', publication = 'runs_cdc'): Promise<number> {
  await waitForSlot(sql, slot, false);
  const { rows } = await sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)
      WHERE substr(data, 1, 1) = $3`,
    [slot, publication, kind],
  );
  return Number(rows[0]?.n);
}

/**
 * Write and recycle WAL until `slot` is invalidated (`wal_status = lost`); needs a server started
 * with a small `max_slot_wal_keep_size` (see slot-lost.test.ts). Nobody reads the slot meanwhile.
 */
export async function invalidateSlot(sql: pg.ClientBase, slot: string): Promise<void> {
  await sql.query('CREATE TABLE IF NOT EXISTS filler (body text)');
  await waitFor(
    'the slot to be invalidated',
    async () => {
      await sql.query(`INSERT INTO filler SELECT md5(random()::text) || repeat('x', 1000) FROM generate_series(1, 20000)`);
      await sql.query('SELECT pg_switch_wal()');
      await sql.query('CHECKPOINT');
      return (await readSlot(sql, slot))?.walStatus === 'lost';
    },
    60_000,
  );
}
