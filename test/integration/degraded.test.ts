/**
 * TRUNCATE (delete, ignore or fail), and running without REPLICA IDENTITY FULL (--allow-partial-identity): changes that
 * do not carry the whole row are completed from ClickHouse, never written with holes.
 */
import { expect, it } from 'vitest';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { queryRows, testClickHouse, unconfirmedInSlot } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

async function liveIds(): Promise<string[]> {
  const rows = await queryRows<{ run_id: string }>(
    await testClickHouse(),
    `SELECT run_id FROM ${env.database}.task_runs_v2 FINAL WHERE _is_deleted = 0 ORDER BY run_id`,
  );
  return rows.map((r) => r.run_id);
}

it('TRUNCATE deletes earlier rows of that table only; rows inserted after it survive', async () => {
  const replication = await env.start();
  const legacy = [makeRun({ table: 'TaskRun', index: 1 }), makeRun({ table: 'TaskRun', index: 2 })];
  const v2 = makeRun({ table: 'task_run_v2', index: 3 });
  await insertRuns(env.pgdb.sql, 'TaskRun', legacy);
  await insertRuns(env.pgdb.sql, 'task_run_v2', [v2]);
  const after = makeRun({ table: 'TaskRun', index: 4 });
  await env.pgdb.sql.query('BEGIN');
  await env.pgdb.sql.query('TRUNCATE "TaskRun"');
  await insertRuns(env.pgdb.sql, 'TaskRun', [after]);
  await env.pgdb.sql.query('COMMIT');
  await replication.caughtUp();
  expect(await liveIds()).toEqual([after.id, v2.id].sort());
  expect(replication.daemon.stats.truncates).toBe(1);
});

it('--on-truncate=ignore keeps the rows and goes on; --on-truncate=fail stops before acknowledging the TRUNCATE', async () => {
  const ignoring = await env.start({ onTruncate: 'ignore' });
  const first = makeRun({ table: 'TaskRun', index: 1 });
  await insertRuns(env.pgdb.sql, 'TaskRun', [first]);
  await env.pgdb.sql.query('TRUNCATE "TaskRun"');
  const later = makeRun({ table: 'TaskRun', index: 2 });
  await insertRuns(env.pgdb.sql, 'TaskRun', [later]);
  await ignoring.caughtUp();
  expect(await liveIds()).toEqual([first.id, later.id].sort());
  expect(ignoring.daemon.stats.truncates).toBe(1);
  await ignoring.stop();

  const failing = await env.start({ onTruncate: 'fail' });
  await env.pgdb.sql.query('TRUNCATE "TaskRun"');
  await expect(failing.running).rejects.toThrow('--on-truncate=fail: stopped before acknowledging it');
  // The slot still holds the TRUNCATE: it was not acknowledged.
  expect(await unconfirmedInSlot(env.pgdb.sql, failing.config.slot, 'T')).toBe(1);
  expect(await liveIds()).toEqual([first.id, later.id].sort());
});

it('without FULL identity, a delete is tombstoned on the sort key looked up in ClickHouse', async () => {
  await env.pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
  const replication = await env.start({ allowPartialIdentity: true });
  const run = makeRun({ table: 'task_run_v2', index: 1 });
  await insertRuns(env.pgdb.sql, 'task_run_v2', [run]);
  await replication.caughtUp();
  await env.pgdb.sql.query('DELETE FROM task_run_v2 WHERE id = $1', [run.id]);
  await replication.caughtUp();
  expect(await liveIds()).toEqual([]);
  expect(replication.daemon.stats.lookups).toBe(1);
});

it('without FULL identity, a delete of a run ClickHouse never had is counted as unresolved', async () => {
  await env.pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
  const unknown = makeRun({ table: 'task_run_v2', index: 1 });
  await insertRuns(env.pgdb.sql, 'task_run_v2', [unknown]); // before the slot: never replicated
  const replication = await env.start({ allowPartialIdentity: true });
  await env.pgdb.sql.query('DELETE FROM task_run_v2 WHERE id = $1', [unknown.id]);
  await replication.caughtUp();
  expect(replication.daemon.stats.unresolvedDeletes).toBe(1);
  expect(await liveIds()).toEqual([]);
});

it('without FULL identity, an unchanged TOASTed payload is taken from ClickHouse, not blanked', async () => {
  await env.pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
  const replication = await env.start({ allowPartialIdentity: true });
  const run = makeRun({ table: 'task_run_v2', index: 1 });
  run.payload = Array.from({ length: 20_000 }, () => Math.random().toString(36).slice(2)).join('');
  await insertRuns(env.pgdb.sql, 'task_run_v2', [run]);
  await env.pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = $1`, [run.id]);
  await replication.caughtUp();
  const [row] = await queryRows<{ status: string; payload: string }>(
    await testClickHouse(),
    `SELECT status, payload FROM ${env.database}.task_runs_v2 FINAL WHERE _is_deleted = 0`,
  );
  expect(row).toEqual({ status: 'EXECUTING', payload: run.payload });
  expect(replication.daemon.stats.lookups).toBe(1);
});
