/**
 * Preflight against real Postgres servers: each misconfiguration fails before streaming, with
 * one sentence naming the fix; what is safe to create is created.
 */
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPostgres } from '../../src/embedded/postgres.ts';
import { PreflightError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { readSlot } from '../../src/source/catalog.ts';
import { preflightPostgres } from '../../src/source/preflight.ts';
import { startDaemon } from '../support/daemon.ts';
import {
  freshClickHouseDatabase,
  freshPostgres,
  type TestPostgres,
  testClickHouse,
  uniqueName,
  waitFor,
  waitForSlot,
} from '../support/databases.ts';

const options = () => ({ publication: 'runs_cdc', slot: uniqueName('slot'), fixReplicaIdentity: false, allowPartialIdentity: false });
let pgdb: TestPostgres;

beforeEach(async () => {
  pgdb = await freshPostgres();
});
afterEach(async () => {
  await pgdb.close();
});

describe('replica identity', () => {
  it('a table without REPLICA IDENTITY FULL fails with the ALTER that fixes it', async () => {
    await pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
    const failure = preflightPostgres(pgdb.sql, options(), silentLogger);
    await expect(failure).rejects.toThrow(PreflightError);
    await expect(failure).rejects.toThrow('ALTER TABLE "task_run_v2" REPLICA IDENTITY FULL');
    await expect(failure).rejects.toThrow('--fix-replica-identity');
  });

  it('--fix-replica-identity sets it', async () => {
    await pgdb.sql.query('ALTER TABLE "TaskRun" REPLICA IDENTITY DEFAULT');
    await preflightPostgres(pgdb.sql, { ...options(), fixReplicaIdentity: true }, silentLogger);
    const { rows } = await pgdb.sql.query(`SELECT relreplident FROM pg_class WHERE oid = '"TaskRun"'::regclass`);
    expect(rows[0].relreplident).toBe('f');
  });

  it('--allow-partial-identity runs degraded and reports the table', async () => {
    await pgdb.sql.query('ALTER TABLE "TaskRun" REPLICA IDENTITY DEFAULT');
    const result = await preflightPostgres(pgdb.sql, { ...options(), allowPartialIdentity: true }, silentLogger);
    expect(result.partialIdentityTables).toEqual(['TaskRun']);
  });
});

describe('publication and slot', () => {
  it('creates a missing publication over both tables, then a pgoutput slot', async () => {
    const opts = options();
    const result = await preflightPostgres(pgdb.sql, opts, silentLogger);
    expect(result).toMatchObject({ createdPublication: true, createdSlot: true });
    const { rows } = await pgdb.sql.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = 'runs_cdc' ORDER BY 1`);
    expect(rows.map((r) => r.tablename)).toEqual(['TaskRun', 'task_run_v2']);
    expect(await readSlot(pgdb.sql, opts.slot)).toMatchObject({ plugin: 'pgoutput', active: false });
    expect(await preflightPostgres(pgdb.sql, opts, silentLogger)).toMatchObject({ createdPublication: false, createdSlot: false });
  });

  it('a publication missing a table fails with the ALTER PUBLICATION that fixes it', async () => {
    await pgdb.sql.query('CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun"');
    await expect(preflightPostgres(pgdb.sql, options(), silentLogger)).rejects.toThrow(
      'ALTER PUBLICATION "runs_cdc" ADD TABLE "task_run_v2"',
    );
  });

  it('missing runs tables fail with where to find their DDL', async () => {
    const empty = await freshPostgres(undefined, false);
    try {
      await expect(preflightPostgres(empty.sql, options(), silentLogger)).rejects.toThrow(
        /"TaskRun" does not exist.*sql\/001_runs_tables.sql/,
      );
    } finally {
      await empty.close();
    }
  });
});

describe('ClickHouse schema', () => {
  it('a table that drifted from the column mapping stops the daemon before streaming, naming migrate', async () => {
    const ch = await testClickHouse();
    const database = await freshClickHouseDatabase(ch);
    await ch.command({ query: `ALTER TABLE ${database}.task_runs_v2 DROP COLUMN ttl` });
    await expect(startDaemon(pgdb, ch, database)).rejects.toThrow(
      /does not match runs-cdc's column mapping \(column ttl is missing\): run runs-cdc migrate/,
    );
  });
});

describe('single consumer', () => {
  it('a second daemon on a busy slot stands by and takes over when the first stops', async () => {
    const ch = await testClickHouse();
    const database = await freshClickHouseDatabase(ch);
    const slot = uniqueName('slot');
    const first = await startDaemon(pgdb, ch, database, { slot });
    await waitForSlot(pgdb.sql, slot, true);
    const second = startDaemon(pgdb, ch, database, { slot, standbyRetryMs: 50 });
    let secondStarted = false;
    void second.then(() => {
      secondStarted = true;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(secondStarted).toBe(false);
    await first.stop();
    const standby = await second;
    await waitFor('the standby to take the slot', () => secondStarted);
    await standby.stop();
  });
});

describe('wal_level', () => {
  let replicaOnly: Awaited<ReturnType<typeof startPostgres>> | undefined;
  afterAll(async () => {
    await replicaOnly?.stop();
  });

  it('a server without wal_level=logical fails with how to set it', async () => {
    replicaOnly = await startPostgres({ settings: ['wal_level=replica'] });
    const other = await freshPostgres(replicaOnly.url);
    try {
      const failure = preflightPostgres(other.sql, options(), silentLogger);
      await expect(failure).rejects.toThrow(PreflightError);
      await expect(failure).rejects.toThrow('wal_level=replica, but logical replication needs wal_level=logical');
      await expect(failure).rejects.toThrow('ALTER SYSTEM SET wal_level = logical');
    } finally {
      await other.close();
    }
  });
});
