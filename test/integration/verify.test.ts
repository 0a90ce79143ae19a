/**
 * verify against real Postgres and ClickHouse: equal tables pass; a run missing from ClickHouse,
 * one deleted there only, one with a stale status and one ClickHouse has but Postgres does not
 * are each named with how they differ; --repair fixes exactly those.
 */
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { SOURCE_COLUMNS, SOURCE_TABLES } from '../../src/schema/columns.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
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

it('compares every mapped column by default: a run differing only in output, tags or payload (TOASTed) is named with its column', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const daemon = await env.start();
  const table = 'task_run_v2';
  // Values where the two servers' text could differ: a TOASTed payload (random, so it is stored
  // out of line), floats, -0, NaN, an out-of-range timestamp, arrays with NULL, commas, quotes
  // and separators, unicode JSON, NULLs next to ''.
  const runs = Array.from({ length: 40 }, (_, i) => makeRun({ table, index: i }));
  const odd = {
    payload: randomBytes(150_000).toString('base64'),
    costInCents: 0.1,
    baseCostInCents: 1 / 3,
    runTags: ['a,b', 'q"uote', '1:x', '', 'ü €'],
    bulkActionGroupIds: ['x'],
    context: { note: 'ünïcode \u2028 "q"', n: 1e21 },
    output: '',
    metadata: null,
    expiredAt: '2400-01-01 00:00:00',
    statusReason: '-',
  };
  Object.assign(runs[0] as object, odd);
  Object.assign(runs[1] as object, { costInCents: 1e21, baseCostInCents: 1.5e-7, output: '3:abc' });
  await insertRuns(pgdb.sql, table, runs);
  await pgdb.sql.query(
    `UPDATE task_run_v2 SET "costInCents" = '-0', "baseCostInCents" = 'NaN', "runTags" = '{{a,NULL},{c,d}}' WHERE id = $1`,
    [runs[2]?.id],
  );
  await pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = $1`, [runs[0]?.id]); // payload unchanged: TOAST
  await daemon.caughtUp();
  const verifier = new Verifier(pgdb.sql, ch, database);
  const all = await verifier.run(OPTIONS);
  expect(all.differences).toEqual([]);
  expect(all.equal).toBe(true);
  expect(all.columns).toHaveLength(SOURCE_COLUMNS.length);

  // ClickHouse holds wrong output, tags and payload for three runs; everything else is right.
  const [a, b, c] = runs.slice(3, 6).map((r) => r.id) as [string, string, string];
  const current = async (id: string) =>
    (
      await queryRows<ClickHouseRow>(ch, `SELECT * FROM ${database}.task_runs_v2 FINAL WHERE run_id = {id:String}`, { id })
    )[0] as ClickHouseRow;
  const newer = async (id: string, change: ClickHouseRow) => {
    const row = await current(id);
    return { ...row, ...change, _version: (BigInt(String(row._version)) + 1n).toString() };
  };
  const wrong = [
    await newer(a, { output: '{"ok":false}' }),
    await newer(b, { tags: ['user:1', 'tier:9'] }),
    await newer(c, { payload: `${(await current(c)).payload} ` }),
  ];
  await ch.insert({ table: `${database}.task_runs_v2`, values: wrong, format: 'JSONEachRow' });

  const report = await verifier.run(OPTIONS);
  expect(report.equal).toBe(false);
  expect(report.differences.map((d) => [d.runId, d.kind, d.columns]).sort()).toEqual(
    [
      [a, 'different', ['output']],
      [b, 'different', ['runTags']],
      [c, 'different', ['payload']],
    ].sort(),
  );
  // The key set is cheaper and blind to them.
  const key = await verifier.run({ ...OPTIONS, columns: 'key' });
  expect(key.columns).toEqual(['id', 'status', 'taskIdentifier', 'runtimeEnvironmentId', 'projectId', 'organizationId', 'updatedAt']);
  expect(key.equal).toBe(true);
});
