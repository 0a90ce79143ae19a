/**
 * The run list over rows that arrived through the real replication daemon: a run updated ten
 * times counts once with its latest status, a deleted run never appears, a run whose sort key
 * moved (createdAt changed) appears once, at its new time.
 */
import { expect, it, onTestFinished } from 'vitest';
import { RunQueries } from '../../src/queries/run-queries.ts';
import { anotherClickHouse } from '../support/backends.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { testClickHouse } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();
const NOW = Date.UTC(2026, 10, 8);
const SCOPE = { organizationId: 'org_1', projectId: 'proj_1', environmentId: 'env_prod' };

it('updates, deletes and sort-key moves replicated from Postgres show exactly in list, count and stats', async () => {
  // No background merges: every version stays in its own part, as on a busy server, so only
  // FINAL can tell the current one.
  await (await testClickHouse()).command({ query: `SYSTEM STOP MERGES ${env.database}.task_runs_v2` });
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const runs = Array.from({ length: 60 }, (_, i) =>
    makeRun({ table: 'task_run_v2', index: i, createdAt: new Date(NOW - 86_400_000 + i * 60_000) }),
  );
  await insertRuns(sql, 'task_run_v2', runs);
  const [updated, deleted, moved] = runs as [(typeof runs)[0], (typeof runs)[0], (typeof runs)[0]];
  const statuses = [
    'DEQUEUED',
    'EXECUTING',
    'WAITING_TO_RESUME',
    'EXECUTING',
    'RETRYING_AFTER_FAILURE',
    'EXECUTING',
    'PAUSED',
    'EXECUTING',
  ];
  for (const status of statuses) await sql.query(`UPDATE task_run_v2 SET status = $2 WHERE id = $1`, [updated.id, status]);
  await completeRuns(sql, 'task_run_v2', [updated.id], new Date(NOW - 3_600_000));
  await deleteRuns(sql, 'task_run_v2', [deleted.id]);
  await sql.query(`UPDATE task_run_v2 SET "createdAt" = $2 WHERE id = $1`, [moved.id, '2026-11-07 23:30:00']);
  await replication.caughtUp();

  // Its own connection: chDB keeps readonly on the connection that ran the query.
  const reader = await anotherClickHouse();
  onTestFinished(() => reader.close());
  const queries = new RunQueries(reader, env.database, { timeoutSeconds: 10, maxMemoryBytes: 1e9 }, () => NOW);
  const { rows } = await sql.query<{ status: string }>(`SELECT status::text FROM task_run_v2 WHERE id = $1`, [updated.id]);
  const listed = (await queries.list(SCOPE, { limit: 100 })).runs;
  expect(listed).toHaveLength(59);
  expect(new Set(listed.map((r) => r.runId)).size).toBe(59);
  expect(listed.filter((r) => r.runId === updated.id).map((r) => r.status)).toEqual([rows[0]?.status]);
  expect(listed.some((r) => r.runId === deleted.id)).toBe(false);
  expect(listed.filter((r) => r.runId === moved.id).map((r) => r.createdAt)).toEqual(['2026-11-07 23:30:00.000']);
  expect(listed[0]?.runId).toBe(moved.id); // newest first: it moved to the latest time

  expect(await queries.count(SCOPE)).toBe(59);
  expect(await queries.count({ ...SCOPE, statuses: 'EXECUTING' })).toBe(0); // no stale version counts
  const stats = await queries.stats(SCOPE);
  expect(stats.histogram.reduce((n, b) => n + b.runs, 0)).toBe(59);
  expect(stats.histogram.filter((b) => b.status === rows[0]?.status).reduce((n, b) => n + b.runs, 0)).toBe(1);
});
