/**
 * The oversized-value policy: a 50 MB payload is stored whole (ClickHouse's String has no such
 * limit, and such a row is a batch of its own since it exceeds --batch-bytes), without crashing
 * the daemon or holding the stream.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { liveRunCount, queryRows, testClickHouse } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

it('stores a 50 MB payload whole and keeps replicating', async () => {
  const replication = await env.start();
  const payload = randomBytes(25 * 1024 * 1024).toString('hex'); // 50 MB, incompressible
  const big = { ...makeRun({ table: 'task_run_v2', index: 1 }), payload };
  await insertRuns(env.pgdb.sql, 'task_run_v2', [big]);
  const after = makeRun({ table: 'task_run_v2', index: 2 });
  await insertRuns(env.pgdb.sql, 'task_run_v2', [after]);
  await replication.caughtUp();
  const rows = await queryRows<{ run_id: string; bytes: string; same: number }>(
    await testClickHouse(),
    `SELECT run_id, length(payload) AS bytes, payload = {expected:String} AS same FROM ${env.database}.task_runs_v2 FINAL WHERE run_id = {id:String}`,
    { id: big.id, expected: payload },
  );
  expect(rows).toEqual([{ run_id: big.id, bytes: String(payload.length), same: 1 }]);
  expect(await liveRunCount(await testClickHouse(), env.database)).toBe(2);
});
