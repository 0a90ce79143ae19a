/**
 * One run, two tables: the platform migrates legacy runs by copying them from "TaskRun" into
 * task_run_v2 with the same id; the v2 copy is then the run. Whatever happens to the legacy copy
 * afterwards (updates, deletes, sort-key moves, TRUNCATE, in any order, through CDC, a killed
 * daemon, the default or the repair backfill), ClickHouse shows the run once, as its v2 copy;
 * deleting the v2 copy deletes the run. Merges are stopped, so only FINAL can pick the winner.
 * Each test ends with ClickHouse equal to Postgres under that rule, column for column, the run
 * list and count seeing each run once, and verify finding the tables equal.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { beforeEach, expect, it, onTestFinished } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { crash } from '../../src/failpoints.ts';
import { silentLogger } from '../../src/logger.ts';
import { gatherStatus } from '../../src/ops/status.ts';
import { RunQueries } from '../../src/queries/run-queries.ts';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { repairDifferences } from '../../src/verify/repair.ts';
import { Verifier } from '../../src/verify/verify.ts';
import { anotherClickHouse } from '../support/backends.ts';
import { backfillContext, backfillRequest, expectClickHouseEqualsPostgres, withFailpoint } from '../support/backfill.ts';
import { freshEnvironmentPerTest, type RunningDaemon } from '../support/daemon.ts';
import { queryRows, testClickHouse, uniqueName } from '../support/databases.ts';
import { completeRuns, copyRunsToV2, deleteRuns, insertRuns, makeRun, type RunRow } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();
const NOW = Date.UTC(2026, 10, 3);
const SCOPE = { organizationId: 'org_1', projectId: 'proj_1', environmentId: 'env_prod' };
let ch: ClickHouseClient;

beforeEach(async () => {
  ch = await testClickHouse();
  await ch.command({ query: `SYSTEM STOP MERGES ${env.database}.task_runs_v2` });
});

async function legacyRuns(n: number, from = 0): Promise<RunRow[]> {
  const runs = Array.from({ length: n }, (_, i) => makeRun({ table: 'TaskRun', index: from + i }));
  await insertRuns(env.pgdb.sql, 'TaskRun', runs);
  return runs;
}

const ids = (runs: readonly RunRow[]) => runs.map((r) => r.id);

/** What a reader sees of one run: the source table and status of each live row. */
async function liveRowsOf(id: string): Promise<string[]> {
  const rows = await queryRows<{ source_table: string; status: string }>(
    ch,
    `SELECT source_table, status FROM ${env.database}.task_runs_v2 FINAL WHERE run_id = {id:String} AND _is_deleted = 0`,
    { id },
  );
  return rows.map((r) => `${r.source_table} ${r.status}`);
}

/** ClickHouse equals Postgres under the rule; the list (every page) and the count see each run
 * once; verify finds nothing to repair. */
async function expectTheRule(deletedThroughV2: readonly string[] = []): Promise<number> {
  const runs = await expectClickHouseEqualsPostgres(env.pgdb, ch, env.database, deletedThroughV2);
  const reader = await anotherClickHouse();
  onTestFinished(() => reader.close());
  const queries = new RunQueries(reader, env.database, { timeoutSeconds: 10, maxMemoryBytes: 1e9 }, () => NOW);
  expect(await queries.count(SCOPE)).toBe(runs);
  const listed: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await queries.list(SCOPE, { limit: 100, cursor });
    listed.push(...page.runs.map((r) => r.runId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  expect(listed.length).toBe(runs);
  expect(new Set(listed).size).toBe(runs);
  const report = await new Verifier(env.pgdb.sql, ch, env.database).run({ tables: SOURCE_TABLES, windowSeconds: 3600, leafRows: 50 });
  expect(report.differences).toEqual([]);
  expect(report.equal).toBe(true);
  return runs;
}

it('copy then delete the legacy copy, in one transaction and in two: the v2 copy stays the run', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const runs = await legacyRuns(40);
  await replication.caughtUp();
  const [oneTx, twoTx] = [ids(runs.slice(0, 10)), ids(runs.slice(10, 20))];
  await sql.query('BEGIN');
  await copyRunsToV2(sql, oneTx);
  await completeRuns(sql, 'task_run_v2', oneTx, new Date(NOW - 3_600_000));
  await deleteRuns(sql, 'TaskRun', oneTx);
  await sql.query('COMMIT');
  await copyRunsToV2(sql, twoTx);
  await deleteRuns(sql, 'TaskRun', twoTx);
  await replication.caughtUp();
  for (const id of [...oneTx, ...twoTx]) expect((await liveRowsOf(id))[0]).toMatch(/^task_run_v2 /);
  expect(await liveRowsOf(oneTx[0] as string)).toHaveLength(1);
  expect(await expectTheRule()).toBe(40);
});

it('a late update of the stale legacy copy does not overwrite the updated v2 copy', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const [run] = await legacyRuns(5);
  const id = (run as RunRow).id;
  await copyRunsToV2(sql, [id]);
  await sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING', "updatedAt" = "updatedAt" + interval '1 minute' WHERE id = $1`, [id]);
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED', "updatedAt" = "updatedAt" + interval '2 minutes' WHERE id = $1`, [id]);
  await replication.caughtUp();
  expect(await liveRowsOf(id)).toEqual(['task_run_v2 EXECUTING']);
  expect(await expectTheRule()).toBe(5);
});

it('deleting the v2 copy deletes the run: the legacy copy still in Postgres does not come back, even when updated', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const [run] = await legacyRuns(5);
  const id = (run as RunRow).id;
  await copyRunsToV2(sql, [id]);
  await deleteRuns(sql, 'task_run_v2', [id]);
  await replication.caughtUp();
  expect(await liveRowsOf(id)).toEqual([]);
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED' WHERE id = $1`, [id]);
  await sql.query(`UPDATE "TaskRun" SET "createdAt" = "createdAt" + interval '1 hour' WHERE id = $1`, [id]); // a sort-key move
  await replication.caughtUp();
  expect(await liveRowsOf(id)).toEqual([]);
  expect(await expectTheRule([id])).toBe(4);
});

it('legacy rows under a key the v2 copy does not have (a moved legacy copy, a legacy insert after the copy moved) stay hidden', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const runs = await legacyRuns(6);
  const [moved, reinserted, movedInOneTx] = ids(runs) as [string, string, string];
  await copyRunsToV2(sql, [moved, reinserted]);
  // The stale legacy copy moves: its row lands under a key no v2 row shares.
  await sql.query(`UPDATE "TaskRun" SET "createdAt" = "createdAt" + interval '5 hours', status = 'CRASHED' WHERE id = $1`, [moved]);
  // The v2 copy moves away; the legacy copy is deleted and written again under a third key.
  await sql.query(`UPDATE task_run_v2 SET "createdAt" = "createdAt" + interval '2 hours' WHERE id = $1`, [reinserted]);
  const [legacy] = (await sql.query(`SELECT row_to_json(t) AS r FROM "TaskRun" t WHERE id = $1`, [reinserted])).rows as Array<{
    r: RunRow;
  }>;
  await deleteRuns(sql, 'TaskRun', [reinserted]);
  await insertRuns(sql, 'TaskRun', [{ ...(legacy as { r: RunRow }).r, createdAt: '2026-11-01 07:00:00', status: 'CANCELED' }]);
  // Copy and move of the legacy copy in one transaction (one ClickHouse insert).
  await sql.query('BEGIN');
  await copyRunsToV2(sql, [movedInOneTx]);
  await sql.query(`UPDATE "TaskRun" SET "projectId" = 'proj_1', "createdAt" = "createdAt" + interval '1 day' WHERE id = $1`, [
    movedInOneTx,
  ]);
  await sql.query('COMMIT');
  await replication.caughtUp();
  for (const id of [moved, reinserted, movedInOneTx]) expect(await liveRowsOf(id)).toEqual(['task_run_v2 PENDING']);
  expect(await expectTheRule()).toBe(6);
});

it('TRUNCATE "TaskRun" after a partial migration deletes the legacy-only runs and keeps the migrated ones', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const runs = await legacyRuns(30);
  const migrated = ids(runs.slice(0, 12));
  await copyRunsToV2(sql, migrated);
  await completeRuns(sql, 'task_run_v2', migrated.slice(0, 4), new Date(NOW - 3_600_000));
  // Late writes to stale legacy copies: the TRUNCATE must not take these runs' v2 copies along.
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED' WHERE id = ANY($1)`, [migrated.slice(2, 8)]);
  await replication.caughtUp();
  // What an operator following the migration sees.
  const status = await gatherStatus(sql, { slot: replication.config.slot, publication: 'runs_cdc', database: env.database }, ch, {
    maxInactiveSeconds: 600,
    maxRetainedWalBytes: 2 ** 30,
  });
  expect(status.migration).toEqual({ runsInBothTables: 12 });
  expect(status.clickhouse.rows?.map((r) => [r.sourceTable, r.final])).toEqual([
    ['TaskRun', 18],
    ['task_run_v2', 12],
  ]);
  await sql.query('TRUNCATE "TaskRun"');
  await replication.caughtUp();
  expect(await expectTheRule()).toBe(12);
});

it('the same migration with the daemon killed mid-way (state lost) and restarted ends the same', async () => {
  const slot = uniqueName('slot');
  let replication: RunningDaemon = await env.start({ slot });
  const sql = env.pgdb.sql;
  const runs = await legacyRuns(300);
  const [a, b, c, d] = [0, 1, 2, 3].map((k) => ids(runs.slice(k * 50, (k + 1) * 50))) as [string[], string[], string[], string[]];
  await copyRunsToV2(sql, a);
  await completeRuns(sql, 'task_run_v2', a, new Date(NOW - 3_600_000));
  await copyRunsToV2(sql, b);
  await deleteRuns(sql, 'task_run_v2', b.slice(0, 10)); // runs deleted through their v2 copy
  await crash(replication.daemon); // some of the above written, some buffered, some not read
  replication.running.catch(() => {});
  await deleteRuns(sql, 'TaskRun', a);
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED', "createdAt" = "createdAt" + interval '1 hour' WHERE id = ANY($1)`, [b]);
  replication = await env.start({ slot });
  await copyRunsToV2(sql, c);
  await sql.query(`UPDATE "TaskRun" SET status = 'CANCELED' WHERE id = ANY($1)`, [c]);
  await crash(replication.daemon);
  replication.running.catch(() => {});
  await copyRunsToV2(sql, d);
  await sql.query('TRUNCATE "TaskRun"');
  replication = await env.start({ slot });
  await replication.caughtUp();
  // a, c, d and b but its first 10 are in v2; everything else was truncated.
  expect(await expectTheRule(b.slice(0, 10))).toBe(190);
});

it('the default and the repair backfill of a database in mid-migration, while CDC goes on, end equal under the rule', async () => {
  const sql = env.pgdb.sql;
  // Before the slot: a migration half done, in every state the backfill can find it in.
  const runs = await legacyRuns(600);
  const part = (k: number) => ids(runs.slice(k * 50, (k + 1) * 50));
  await copyRunsToV2(sql, [...part(0), ...part(1), ...part(2), ...part(3), ...part(4)]);
  await deleteRuns(sql, 'TaskRun', part(0)); // fully migrated
  await completeRuns(sql, 'task_run_v2', part(1), new Date(NOW - 3_600_000)); // v2 copy updated
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED', "createdAt" = "createdAt" + interval '3 hours' WHERE id = ANY($1)`, [part(2)]);
  await sql.query(`UPDATE task_run_v2 SET "createdAt" = "createdAt" + interval '2 hours' WHERE id = ANY($1)`, [part(3)]);
  const slot = uniqueName('slot');
  const replication = await env.start({ slot });
  const context = backfillContext(env.pgdb, ch, env.database, { slot, tuning: { chunkRows: 40 } });
  // Meanwhile the migration goes on through CDC, page by page of the backfill's reads.
  let step = 5;
  const afterRead = async () => {
    if (step >= 12) return;
    const next = part(step++);
    await copyRunsToV2(sql, next);
    await sql.query(`UPDATE "TaskRun" SET status = 'CANCELED', "createdAt" = "createdAt" + interval '1 hour' WHERE id = ANY($1)`, [
      next.slice(0, 10),
    ]);
    await deleteRuns(sql, 'TaskRun', next.slice(10, 30));
    await deleteRuns(sql, 'task_run_v2', next.slice(40, 45)); // deleted through v2
  };
  const deletedThroughV2 = Array.from({ length: 7 }, (_, k) => part(5 + k).slice(40, 45)).flat();
  const first = await withFailpoint('backfill.page-read', afterRead, () => runBackfill(sql, backfillRequest(), context));
  expect(first.status).toBe('SUCCESS');
  await replication.caughtUp();
  expect(await expectTheRule(deletedThroughV2)).toBe(600 - deletedThroughV2.length);

  const repair = await runBackfill(sql, backfillRequest({ mode: 'repair' }), context);
  expect(repair.status).toBe('SUCCESS');
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED' WHERE id = ANY($1)`, [part(2)]); // after the repair's snapshot
  await replication.caughtUp();
  expect(await expectTheRule(deletedThroughV2)).toBe(600 - deletedThroughV2.length);
});

it('verify names only real differences in mid-migration, and --repair fixes them by the same rule', async () => {
  const replication = await env.start();
  const sql = env.pgdb.sql;
  const runs = await legacyRuns(60);
  const [lostCopy, duplicated, deletedThroughV2] = ids(runs) as [string, string, string];
  await copyRunsToV2(sql, ids(runs.slice(0, 30)));
  await deleteRuns(sql, 'TaskRun', ids(runs.slice(10, 20)));
  await deleteRuns(sql, 'task_run_v2', [deletedThroughV2]);
  await replication.caughtUp();
  const verifier = new Verifier(sql, ch, env.database);
  const options = { tables: SOURCE_TABLES, windowSeconds: 3600, leafRows: 10 };
  expect((await verifier.run(options)).equal).toBe(true);

  // ClickHouse goes wrong behind the daemon's back: a migrated run's v2 row is tombstoned, and a
  // stale legacy row of another shows under a key its v2 copy does not have.
  const current = async (id: string) =>
    (
      await queryRows<Record<string, unknown>>(ch, `SELECT * FROM ${env.database}.task_runs_v2 FINAL WHERE run_id = {id:String}`, { id })
    )[0];
  const lost = (await current(lostCopy)) as Record<string, unknown>;
  const stale = (await current(duplicated)) as Record<string, unknown>;
  await ch.insert({
    table: `${env.database}.task_runs_v2`,
    values: [
      { ...lost, _version: (BigInt(String(lost._version)) + 1n).toString(), _is_deleted: 1 },
      { ...stale, source_table: 'TaskRun', created_at: '2026-11-01 09:00:00.000', _version: '1' },
    ],
    format: 'JSONEachRow',
  });
  const report = await verifier.run(options);
  expect(report.differences.map((d) => `${d.table} ${d.runId} ${d.kind}`).sort()).toEqual(
    [`TaskRun ${duplicated} extra`, `task_run_v2 ${lostCopy} missing`].sort(),
  );
  await repairDifferences(
    env.pgdb.url,
    new RunsTable(ch, env.database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger),
    report.differences,
  );
  // A late write to the stale legacy copy after the repair: still hidden.
  await sql.query(`UPDATE "TaskRun" SET status = 'CRASHED' WHERE id = $1`, [duplicated]);
  await replication.caughtUp();
  expect(await liveRowsOf(lostCopy)).toEqual(['task_run_v2 PENDING']);
  expect(await liveRowsOf(duplicated)).toEqual(['task_run_v2 PENDING']);
  expect(await expectTheRule([deletedThroughV2])).toBe(59);
});
