/**
 * `runs-cdc backfill` as a user runs it: a process killed with SIGKILL mid-copy and resumed, the
 * dry run, the job list, and the errors that must stop it before anything is written. Real child
 * processes on a persistent chDB directory, which this process opens only once they are gone.
 */
import { beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/postgres.ts';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { CLI_DATABASE, cliClickHouse, usingClickHouseServer } from '../support/backends.ts';
import { expectClickHouseEqualsPostgres, maxRowsPerRun } from '../support/backfill.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { waitFor, waitForSlot } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const workspace = cliWorkspace('backfill');
const { slot, chdbPath } = workspace;
const RUNS_PER_TABLE = 3000;

beforeAll(async () => {
  for (const table of SOURCE_TABLES) {
    for (let offset = 0; offset < RUNS_PER_TABLE; offset += 500) {
      await insertRuns(
        workspace.pgdb.sql,
        table,
        Array.from({ length: 500 }, (_, i) => makeRun({ table, index: offset + i })),
      );
    }
  }
  await workspace.pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  const migrate = cli(['migrate']);
  expect(await migrate.exit, migrate.output()).toBe(0);
});

const cli = (args: string[], env: Record<string, string> = {}): CliProcess => workspace.cli(args, env);

it('rejects a malformed cursor, an unknown table and --from after --to before anything runs', async () => {
  const cursor = await cli(['backfill', '--after', '2026-13-01 00:00:00_run_1']).finished();
  expect(cursor.code).toBe(2); // usage mistakes: exit 2
  expect(cursor.output).toContain('--after: malformed cursor "2026-13-01 00:00:00_run_1"');
  const table = await cli(['backfill', '--table', 'TaskRuns']).finished();
  expect(table.code).toBe(2);
  expect(table.output).toContain('unknown table "TaskRuns"');
  const range = await cli(['backfill', '--from', '2026-02-01', '--to', '2026-01-01']).finished();
  expect(range.code).toBe(2);
  expect(range.output).toContain('is not before --to');
  const list = await cli(['backfill', '--list']).finished();
  expect(list.output).toContain('no backfill jobs yet');
});

it('an unreachable ClickHouse: could not run (exit 2), with the reason', async () => {
  const { code, output } = await cli(['backfill'], { CLICKHOUSE_URL: `http://127.0.0.1:${await freePort()}` }).finished();
  expect(code).toBe(2);
  expect(output).toMatch(/runs-cdc: ClickHouse \(http:\/\/127\.0\.0\.1:\d+\/?\) is not reachable/);
});

it('--dry-run prints the plan and writes nothing', async () => {
  const { code, output } = await cli(['backfill', '--dry-run', '--exact-count', '--concurrency', '2']).finished();
  expect(code, output).toBe(0);
  expect(output).toContain(`slot ${slot} exists`);
  expect(output).toContain(`rows in total: ${2 * RUNS_PER_TABLE}`);
  expect(output.match(/^(TaskRun|task_run_v2) /gm)).toHaveLength(4);
  expect((await cli(['backfill', '--list']).finished()).output).toContain('no backfill jobs yet');
});

it.skipIf(usingClickHouseServer())(
  'while replicate holds the chDB directory, says so in one sentence instead of an engine error',
  async () => {
    const daemon = cli(['replicate']);
    await waitForSlot(workspace.pgdb.sql, slot, true);
    try {
      const { code, output } = await cli(['backfill']).finished();
      expect(code).toBe(2); // could not run
      expect(output).toMatch(new RegExp(`^runs-cdc: the chDB directory ${chdbPath} is open in another process`));
      expect(output).not.toContain('DB::Exception'); // the engine's own line is not printed first
    } finally {
      daemon.child.kill('SIGTERM');
      expect(await daemon.exit, daemon.output()).toBe(0);
    }
  },
);

it('killed with SIGKILL mid-copy, then resumed: SUCCESS, equal to Postgres, each run once', async () => {
  // Slow enough to be caught mid-copy: 100-row pages at 2,000 rows/s.
  const first = cli(['backfill', '--chunk-rows', '100', '--rate-limit', '2000']);
  const jobId = await waitFor('the job id', () => /backfill (bf_\w+) started/.exec(first.output())?.[1]);
  await waitFor('a few checkpoints', () => (first.output().match(/backfill progress/g)?.length ?? 0) >= 6);
  first.child.kill('SIGKILL');
  expect(await first.exit).toBe(null);

  const listed = await cli(['backfill', '--list']).finished();
  expect(listed.output).toMatch(new RegExp(`${jobId}\\s+RUNNING`));
  const resumed = await cli(['backfill', '--resume', jobId]).finished();
  expect(resumed.code, resumed.output).toBe(0);
  expect(resumed.output).toContain(`backfill ${jobId} SUCCESS: ${2 * RUNS_PER_TABLE} rows copied`);
  expect(resumed.output).toMatch(/; \d+ by this run/);
  const byThisRun = Number(/; (\d+) by this run/.exec(resumed.output)?.[1]);
  expect(byThisRun).toBeLessThan(2 * RUNS_PER_TABLE);
  expect((await cli(['backfill', '--list']).finished()).output).toMatch(new RegExp(`${jobId}\\s+SUCCESS`));

  const ch = await cliClickHouse(chdbPath);
  try {
    expect(await expectClickHouseEqualsPostgres(workspace.pgdb, ch, CLI_DATABASE)).toBe(2 * RUNS_PER_TABLE);
    expect(await maxRowsPerRun(ch, CLI_DATABASE)).toBe(1);
  } finally {
    await ch.close();
  }
});

it('verify: EQUAL after the backfill; a run only Postgres has is named; --repair copies it', async () => {
  const equal = await cli(['verify']).finished();
  expect(equal.code, equal.output).toBe(0);
  expect(equal.output).toMatch(/\nEQUAL\n?$/);
  expect(equal.output).toContain('compared every mapped column (64)');
  const extra = makeRun({ table: 'TaskRun', index: 99_999 });
  await insertRuns(workspace.pgdb.sql, 'TaskRun', [extra]);
  const differs = await cli(['verify', '--json']).finished();
  expect(differs.code).toBe(1);
  expect(JSON.parse(differs.stdout).differences).toEqual([expect.objectContaining({ table: 'TaskRun', runId: extra.id, kind: 'missing' })]);
  const repair = await cli(['verify', '--repair']).finished();
  expect(repair.output).toContain('repaired: 1 copied, 0 tombstoned');
  // A repair that made the databases equal is a success: exit 0, after a re-check.
  expect(repair.output).toContain('after the repair: EQUAL');
  expect(repair.code, repair.output).toBe(0);
  expect((await cli(['verify']).finished()).code).toBe(0);
});

it('verify --routes compares each target for its own organizations, and --repair copies into the right target', async () => {
  const { env: routed } = await workspace.routedTarget('eu', 'org_eu');
  // Runs of the routed organization that neither target holds yet.
  const euRuns = { TaskRun: 4, task_run_v2: 3 } as const;
  for (const [table, count] of Object.entries(euRuns) as Array<[keyof typeof euRuns, number]>) {
    await insertRuns(
      workspace.pgdb.sql,
      table,
      Array.from({ length: count }, (_, i) => makeRun({ table, index: 200_000 + i, organizationId: 'org_eu' })),
    );
  }
  type Report = {
    tables: Array<{ target: string; table: string; postgresRuns: number; clickhouseRuns: number }>;
    differences: Array<{ target: string; runId: string; kind: string }>;
  };
  try {
    const before = await cli(['verify', '--json'], routed).finished();
    expect(before.code, before.output).toBe(1);
    const missing = (JSON.parse(before.stdout) as Report).differences;
    expect(missing).toHaveLength(7);
    expect(missing.every((d) => d.target === 'eu' && d.kind === 'missing')).toBe(true); // none charged to the default target

    const repair = await cli(['verify', '--repair'], routed).finished();
    expect(repair.output).toContain('repaired in target eu: 7 copied, 0 tombstoned');
    expect(repair.output).not.toContain('in target default');

    const after = await cli(['verify', '--json'], routed).finished();
    expect(after.code, after.output).toBe(0);
    const eu = (JSON.parse(after.stdout) as Report).tables.filter((t) => t.target === 'eu');
    expect(eu.map((t) => [t.table, t.postgresRuns, t.clickhouseRuns])).toEqual([
      ['TaskRun', 4, 4],
      ['task_run_v2', 3, 3],
    ]);
    // The copies went to the routed target only: the default one still lacks exactly these runs.
    const unrouted = await cli(['verify', '--json']).finished();
    const inDefault = (JSON.parse(unrouted.stdout) as Report).differences;
    expect(inDefault.map((d) => d.kind).sort()).toEqual(Array(7).fill('missing'));
  } finally {
    await workspace.pgdb.sql.query(`DELETE FROM "TaskRun" WHERE "organizationId" = 'org_eu'`);
    await workspace.pgdb.sql.query(`DELETE FROM task_run_v2 WHERE "organizationId" = 'org_eu'`);
  }
});
