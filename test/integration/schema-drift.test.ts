/**
 * Schema drift while replicating: an added column is not replicated and is logged once; a mapped
 * column dropped or changed to a type that does not convert stops the daemon with a clear message
 * and nothing acknowledged past the change.
 */
import { expect, it } from 'vitest';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { Verifier } from '../../src/verify/verify.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { liveRunCount, testClickHouse, unconfirmedInSlot, waitFor, waitForSlot } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';
import { capturingLogger } from '../support/logs.ts';

const env = freshEnvironmentPerTest();

it('a column added in Postgres is skipped and logged once; replication goes on', async () => {
  const { log, lines } = capturingLogger();
  const replication = await env.start({}, { log });
  await env.pgdb.sql.query(`ALTER TABLE task_run_v2 ADD COLUMN "newThing" text DEFAULT 'x'`);
  await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 1 })]);
  await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 2 })]);
  await replication.caughtUp();
  expect(await liveRunCount(await testClickHouse(), env.database)).toBe(2);
  const warnings = lines.filter((l) => l.includes('newThing'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toContain('not replicated');
});

it.each([
  [
    'dropped',
    `ALTER TABLE task_run_v2 DROP COLUMN "priorityMs"`,
    'column "priorityMs" of task_run_v2 (ClickHouse priority_ms) is gone from Postgres',
  ],
  [
    'changed to text',
    `ALTER TABLE task_run_v2 ALTER COLUMN "usageDurationMs" TYPE text`,
    'column "usageDurationMs" of task_run_v2 now has type oid 25',
  ],
])('a mapped column %s stops the daemon with a clear message, acknowledging nothing past it', async (_what, ddl, message) => {
  const replication = await env.start();
  await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 1 })]);
  await replication.caughtUp();
  await env.pgdb.sql.query(ddl);
  await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 2 })]);
  await expect(replication.running).rejects.toThrow(message);
  // The slot still holds the insert made after the change: it was not acknowledged.
  expect(await unconfirmedInSlot(env.pgdb.sql, replication.config.slot, 'I')).toBe(1);
  expect(await liveRunCount(await testClickHouse(), env.database)).toBe(1);
});

it('a dropped mapped column: restoring it alone stops again; the recovery the message names ends equal to Postgres, column for column', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const table = 'task_run_v2';
  const runs = Array.from({ length: 6 }, (_, i) => ({ ...makeRun({ table, index: i }), priorityMs: 1000 + i }));
  const first = await env.start();
  const slot = first.config.slot;
  await insertRuns(pgdb.sql, table, runs);
  await first.caughtUp();

  await pgdb.sql.query(`ALTER TABLE task_run_v2 DROP COLUMN "priorityMs"`);
  // Changes while the column is gone: an insert, an update and a delete.
  const gapRun = makeRun({ table, index: 10 });
  await insertRuns(pgdb.sql, table, [gapRun]);
  await pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = $1`, [runs[0]?.id]);
  await pgdb.sql.query('DELETE FROM task_run_v2 WHERE id = $1', [runs[1]?.id]);
  const stopped = (await first.running.catch((error: unknown) => error)) as Error;
  expect(stopped.message).toContain('column "priorityMs" of task_run_v2 (ClickHouse priority_ms) is gone from Postgres: restore it');
  expect(stopped.message).toContain('pg_drop_replication_slot(');
  expect(stopped.message).toContain('then runs-cdc replicate --recreate-slot');

  // Restoring the column alone does not help: the slot replays the changes made without it.
  await pgdb.sql.query(`ALTER TABLE task_run_v2 ADD COLUMN "priorityMs" integer NOT NULL DEFAULT 0`);
  await expect(env.start({ slot }).then((r) => r.running)).rejects.toThrow('column "priorityMs" of task_run_v2');

  // The recovery the message names: drop the slot, then replicate --recreate-slot (with the slot
  // guard on, as the CLI runs it: a plain restart would refuse the new slot over replicated rows).
  await waitForSlot(pgdb.sql, slot, false);
  await pgdb.sql.query('SELECT pg_drop_replication_slot($1)', [slot]);
  await expect(env.start({ slot }, { guardSlot: true }).then((r) => r.running)).rejects.toThrow('--recreate-slot');
  const restarted = await env.start({ slot, recreateSlot: true }, { guardSlot: true });
  const afterRun = makeRun({ table, index: 20 });
  await insertRuns(pgdb.sql, table, [afterRun]); // streamed by the new slot
  await waitFor('the repair to end', () => !restarted.daemon.snapshot().repairingGap, 30_000);
  await restarted.caughtUp();
  expect(await expectClickHouseEqualsPostgres(pgdb, ch, database)).toBe(7);
  const verified = await new Verifier(pgdb.sql, ch, database).run({ tables: SOURCE_TABLES, windowSeconds: 3600, leafRows: 50 });
  expect(verified.differences).toEqual([]); // every column, priorityMs included
});
