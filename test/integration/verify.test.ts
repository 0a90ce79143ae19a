/**
 * verify against real Postgres and ClickHouse: equal tables pass; a run missing from ClickHouse,
 * one deleted there only, one with a stale status and one ClickHouse has but Postgres does not
 * are each named with how they differ; --repair fixes exactly those.
 */
import { expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { SOURCE_TABLES } from '../../src/transform/columns.ts';
import type { ClickHouseRow } from '../../src/transform/row.ts';
import { repairDifferences } from '../../src/verify/repair.ts';
import { Verifier } from '../../src/verify/verify.ts';
import { backfillContext, backfillRequest, expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { queryRows, testClickHouse, uniqueName } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const OPTIONS = { tables: SOURCE_TABLES, windowSeconds: 3600, leafRows: 50 };

const env = freshEnvironmentPerTest();

it('names each differing run and how; --repair makes the tables equal', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  for (const table of SOURCE_TABLES) {
    await insertRuns(
      pgdb.sql,
      table,
      Array.from({ length: 1500 }, (_, i) => makeRun({ table, index: i })),
    );
  }
  const slot = uniqueName('slot');
  await pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  expect((await runBackfill(pgdb.sql, backfillRequest(), backfillContext(pgdb, ch, database, { slot }))).status).toBe('SUCCESS');
  const verifier = new Verifier(pgdb.sql, ch, database);
  expect((await verifier.run(OPTIONS)).equal).toBe(true);

  // Four ways to differ, one run each.
  const { rows } = await pgdb.sql.query<{ id: string }>(`SELECT id FROM task_run_v2 ORDER BY "createdAt" LIMIT 3 OFFSET 700`);
  const [deletedThere, stale, ghostTemplate] = rows.map((r) => r.id) as [string, string, string];
  const missing = makeRun({ table: 'TaskRun', index: 5000 });
  await insertRuns(pgdb.sql, 'TaskRun', [missing]); // no daemon runs: ClickHouse never hears of it
  const current = async (id: string) =>
    (
      await queryRows<ClickHouseRow>(ch, `SELECT * FROM ${database}.task_runs_v2 FINAL WHERE run_id = {id:String}`, { id })
    )[0] as ClickHouseRow;
  // One above the row's own version (a task_run_v2 row's version carries the table rank).
  const write = (row: ClickHouseRow) =>
    ch.insert({
      table: `${database}.task_runs_v2`,
      values: [{ ...row, _version: (BigInt(String(row._version)) + 1n).toString() }],
      format: 'JSONEachRow',
    });
  await write({ ...(await current(deletedThere)), _is_deleted: 1 });
  await write({ ...(await current(stale)), status: 'CANCELED' });
  await write({ ...(await current(ghostTemplate)), run_id: 'ghost_run' });

  const report = await verifier.run(OPTIONS);
  expect(report.equal).toBe(false);
  const found = report.differences.map((d) => `${d.table} ${d.runId} ${d.kind}`).sort();
  expect(found).toEqual(
    [
      `TaskRun ${missing.id} missing`,
      `task_run_v2 ${deletedThere} missing`,
      `task_run_v2 ${stale} different`,
      'task_run_v2 ghost_run extra',
    ].sort(),
  );
  const staleReport = report.differences.find((d) => d.runId === stale);
  expect(staleReport?.clickhouse).toContain('CANCELED');
  expect(staleReport?.postgres).toContain('PENDING');
  expect(report.tables.find((t) => t.table === 'task_run_v2')?.differingWindows).toBe(1);

  const repaired = await repairDifferences(
    pgdb.url,
    new RunsTable(ch, database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger),
    report.differences,
  );
  expect(repaired).toMatchObject({ copied: 3, tombstoned: 1 });
  expect((await verifier.run(OPTIONS)).equal).toBe(true);
  await expectClickHouseEqualsPostgres(pgdb, ch, database);
});
