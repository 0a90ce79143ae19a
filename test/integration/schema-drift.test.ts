/**
 * Schema drift while replicating: an added column is not replicated and is logged once; a mapped
 * column dropped or changed to a type that does not convert stops the daemon with a clear message
 * and nothing acknowledged past the change.
 */
import { expect, it } from 'vitest';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { liveRunCount, testClickHouse, unconfirmedInSlot } from '../support/databases.ts';
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
