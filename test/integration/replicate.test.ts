/**
 * The daemon end to end against real Postgres and ClickHouse: what lands in ClickHouse (read
 * with FINAL, as every reader must) after inserts, updates and deletes in both tables.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { currentWalLsn, quoteIdent, readSlot } from '../../src/source/catalog.ts';
import { type RunningDaemon, startDaemon } from '../support/daemon.ts';
import {
  freshClickHouseDatabase,
  freshPostgres,
  queryRows,
  slotConfirmedLsn,
  type TestPostgres,
  testClickHouse,
  waitFor,
} from '../support/databases.ts';
import { insertRuns, makeRun, type RunRow } from '../support/fixtures.ts';

// Timestamps must not depend on the process time zone: run this file far from UTC.
process.env.TZ = 'Pacific/Kiritimati';

let pgdb: TestPostgres;
let database: string;
let replication: RunningDaemon;

beforeAll(async () => {
  pgdb = await freshPostgres();
  const ch = await testClickHouse();
  database = await freshClickHouseDatabase(ch);
  replication = await startDaemon(pgdb, ch, database);
});

afterAll(async () => {
  await replication?.stop();
  await pgdb?.close();
});

async function live(id: string): Promise<Record<string, unknown> | undefined> {
  const rows = await queryRows(
    await testClickHouse(),
    `SELECT * FROM ${database}.task_runs_v2 FINAL WHERE run_id = {id:String} AND _is_deleted = 0`,
    { id },
  );
  expect(rows.length).toBeLessThanOrEqual(1);
  return rows[0];
}

async function versionsOf(id: string): Promise<number> {
  const rows = await queryRows<{ n: string }>(
    await testClickHouse(),
    `SELECT count() AS n FROM ${database}.task_runs_v2 FINAL WHERE run_id = {id:String}`,
    { id },
  );
  return Number(rows[0]?.n);
}

describe.each(SOURCE_TABLES)('changes in %s', (table) => {
  let run: RunRow;
  beforeEach(() => {
    run = makeRun({ table, index: 7 });
  });

  it('an insert lands with every mapped column converted exactly', async () => {
    Object.assign(run, {
      createdAt: '2026-03-04 05:06:07.089',
      updatedAt: '2026-03-04 05:06:07.089',
      startedAt: '2026-03-04 05:06:08.5',
      completedAt: null,
      runTags: ['user:42', 'quote"and\\backslash', 'comma,brace}'],
      idempotencyKeyOptions: { scope: 'run' },
      error: null,
      costInCents: 12.5,
      isWarmStart: true,
      attemptNumber: null,
      statusReason: null,
    });
    await insertRuns(pgdb.sql, table, [run]);
    await replication.caughtUp();
    const row = await live(run.id);
    expect(row).toMatchObject({
      run_id: run.id,
      friendly_id: run.friendlyId,
      status: 'PENDING',
      source_table: table,
      created_at: '2026-03-04 05:06:07.089',
      updated_at: '2026-03-04 05:06:07.089',
      started_at: '2026-03-04 05:06:08.500',
      completed_at: null,
      tags: ['user:42', 'quote"and\\backslash', 'comma,brace}'],
      idempotency_key_options: '{"scope": "run"}',
      cost_in_cents: 12.5,
      is_warm_start: true,
      attempt_number: null,
      status_reason: null,
      is_test: false,
      organization_id: 'org_1',
      project_id: 'proj_1',
      environment_id: 'env_prod',
      worker_queue: 'main',
      payload: run.payload,
      _is_deleted: 0,
    });
  });

  it('an update replaces the row with its new values', async () => {
    await insertRuns(pgdb.sql, table, [run]);
    await pgdb.sql.query(
      `UPDATE ${quoteIdent(table)} SET status = 'EXECUTING', "startedAt" = '2026-11-01 10:00:00.123', "attemptNumber" = 2 WHERE id = $1`,
      [run.id],
    );
    await replication.caughtUp();
    expect(await live(run.id)).toMatchObject({ status: 'EXECUTING', started_at: '2026-11-01 10:00:00.123', attempt_number: 2 });
    expect(await versionsOf(run.id)).toBe(1);
  });

  it('a delete of a run written in an earlier batch tombstones it', async () => {
    await insertRuns(pgdb.sql, table, [run]);
    await replication.caughtUp();
    expect(await live(run.id)).toBeDefined();
    await pgdb.sql.query(`DELETE FROM ${quoteIdent(table)} WHERE id = $1`, [run.id]);
    await replication.caughtUp();
    expect(await live(run.id)).toBeUndefined();
    const tombstones = await queryRows<{ organization_id: string; _is_deleted: number }>(
      await testClickHouse(),
      // FINAL hides tombstones: read the newest version directly.
      `SELECT organization_id, _is_deleted FROM ${database}.task_runs_v2 WHERE run_id = {id:String} ORDER BY _version DESC LIMIT 1`,
      { id: run.id },
    );
    // The tombstone carries the whole old row, so it sits on the same sort key as the run.
    expect(tombstones).toEqual([{ organization_id: 'org_1', _is_deleted: 1 }]);
  });
});

describe('within one transaction', () => {
  it('many changes to one run end as the last one', async () => {
    const run = makeRun({ table: 'task_run_v2', index: 1 });
    await pgdb.sql.query('BEGIN');
    await insertRuns(pgdb.sql, 'task_run_v2', [run]);
    for (const status of ['DEQUEUED', 'EXECUTING', 'RETRYING_AFTER_FAILURE', 'EXECUTING', 'COMPLETED_SUCCESSFULLY']) {
      await pgdb.sql.query(`UPDATE task_run_v2 SET status = $2 WHERE id = $1`, [run.id, status]);
    }
    await pgdb.sql.query(`UPDATE task_run_v2 SET "usageDurationMs" = 4321 WHERE id = $1`, [run.id]);
    await pgdb.sql.query('COMMIT');
    await replication.caughtUp();
    expect(await live(run.id)).toMatchObject({ status: 'COMPLETED_SUCCESSFULLY', usage_duration_ms: 4321 });
  });

  it('an insert then a delete leaves no live run', async () => {
    const run = makeRun({ table: 'TaskRun', index: 2 });
    await pgdb.sql.query('BEGIN');
    await insertRuns(pgdb.sql, 'TaskRun', [run]);
    await pgdb.sql.query(`DELETE FROM "TaskRun" WHERE id = $1`, [run.id]);
    await pgdb.sql.query('COMMIT');
    await replication.caughtUp();
    expect(await live(run.id)).toBeUndefined();
  });
});

describe('values pgoutput does not resend', () => {
  it('an update that leaves a large payload and output unchanged keeps them', async () => {
    // Random text does not compress: Postgres stores it out of line (TOAST) and an update that
    // does not touch it sends an "unchanged TOAST" marker instead of the value.
    const big = (n: number) => Array.from({ length: n }, () => Math.random().toString(36).slice(2)).join('');
    const run = makeRun({ table: 'task_run_v2', index: 3 });
    run.payload = big(20_000);
    run.output = big(20_000);
    await insertRuns(pgdb.sql, 'task_run_v2', [run]);
    await pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = $1`, [run.id]);
    await replication.caughtUp();
    const row = await live(run.id);
    expect(row?.status).toBe('EXECUTING');
    expect(row?.payload).toBe(run.payload);
    expect(row?.output).toBe(run.output);
  });
});

describe('sort-key changes', () => {
  it('an update that moves createdAt and project leaves the run once, under the new key', async () => {
    const run = makeRun({ table: 'TaskRun', index: 4 });
    await insertRuns(pgdb.sql, 'TaskRun', [run]);
    await pgdb.sql.query(`UPDATE "TaskRun" SET "createdAt" = '2025-12-31 23:59:59.999', "projectId" = 'proj_2' WHERE id = $1`, [run.id]);
    await replication.caughtUp();
    expect(await live(run.id)).toMatchObject({ project_id: 'proj_2', created_at: '2025-12-31 23:59:59.999' });
  });
});

describe('values JSON parsing would break', () => {
  it('invalid JSON, surrogate escapes and huge integers land byte for byte', async () => {
    const run = makeRun({ table: 'task_run_v2', index: 5 });
    run.output = '{"unterminated": [1, 2';
    run.metadata = '{"lone": "\\ud800", "ok": "\\u00e9"}';
    run.payload = 'not json at all \u{1F600}';
    await pgdb.sql.query('BEGIN');
    await insertRuns(pgdb.sql, 'task_run_v2', [run]);
    // As text: a JS number cannot even carry this integer to Postgres.
    await pgdb.sql.query(`UPDATE task_run_v2 SET error = $2::jsonb WHERE id = $1`, [
      run.id,
      '{"code": 123456789012345678901234567890, "message": "boom"}',
    ]);
    await pgdb.sql.query('COMMIT');
    await replication.caughtUp();
    const row = await live(run.id);
    expect(row?.output).toBe('{"unterminated": [1, 2');
    expect(row?.metadata).toBe('{"lone": "\\ud800", "ok": "\\u00e9"}');
    expect(row?.error).toBe('{"code": 123456789012345678901234567890, "message": "boom"}');
    expect(row?.payload).toBe('not json at all \u{1F600}');
  });
});

describe('acknowledgement', () => {
  it('the slot confirms exactly the commit end of the last written transaction, not one byte more', async () => {
    const run = makeRun({ table: 'task_run_v2', index: 6 });
    await insertRuns(pgdb.sql, 'task_run_v2', [run]);
    await replication.caughtUp();
    expect(await live(run.id)).toBeDefined();
    const expected = replication.daemon.confirmedLsn;
    await waitFor(
      'the slot to report the confirmed LSN',
      async () => (await slotConfirmedLsn(pgdb.sql, replication.config.slot)) === expected,
    );
  });

  it('WAL from tables it does not replicate does not hold the slot back', async () => {
    await pgdb.sql.query('CREATE TABLE unrelated (id serial primary key, filler text)');
    await pgdb.sql.query(`INSERT INTO unrelated (filler) SELECT repeat('x', 200) FROM generate_series(1, 5000)`);
    const walEnd = await currentWalLsn(pgdb.sql);
    await waitFor('the slot to pass the unrelated WAL', async () => (await slotConfirmedLsn(pgdb.sql, replication.config.slot)) >= walEnd);
  });
});

describe('keepalives', () => {
  it('a connection whose server asks for replies stays up while idle, with no periodic status updates', async () => {
    const quiet = await freshPostgres();
    try {
      // The walsender drops a client that has not replied within wal_sender_timeout; it asks for a
      // reply when half of it has passed. Periodic status updates are pushed out of the way.
      await quiet.sql.query(`ALTER DATABASE ${quiet.database} SET wal_sender_timeout = '1s'`);
      const idle = await startDaemon(quiet, await testClickHouse(), database, { statusIntervalMs: 600_000 });
      try {
        const activePid = await waitFor(
          'the slot to be streaming',
          async () => (await readSlot(quiet.sql, idle.config.slot))?.activePid ?? undefined,
        );
        await new Promise((r) => setTimeout(r, 4_000));
        expect((await readSlot(quiet.sql, idle.config.slot))?.activePid).toBe(activePid);
        expect(idle.daemon.stats.reconnects).toBe(0); // kept up, not dropped and reopened
        const run = makeRun({ table: 'TaskRun', index: 9 });
        await insertRuns(quiet.sql, 'TaskRun', [run]);
        await idle.caughtUp();
        expect(await live(run.id)).toBeDefined();
      } finally {
        await idle.stop();
      }
    } finally {
      await quiet.close();
    }
  });
});
