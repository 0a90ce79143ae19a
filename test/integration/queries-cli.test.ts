/**
 * `runs-cdc runs ...` and the HTTP API as a user and a dashboard use them: aligned tables and
 * JSON from the CLI, one-sentence errors, and, while `replicate` holds the embedded engine's
 * directory, the same answers through its API (`--api-port`, `--api-url`).
 */
import { beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/postgres.ts';
import { usingClickHouseServer } from '../support/backends.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { waitFor, waitForSlot } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const workspace = cliWorkspace('queries', { LOG_LEVEL: 'warn' });
const { slot } = workspace;
const SCOPE = ['--org', 'org_1', '--project', 'proj_1', '--env', 'env_prod', '--from', '2026-10-01'];

beforeAll(async () => {
  await insertRuns(
    workspace.pgdb.sql,
    'task_run_v2',
    Array.from({ length: 120 }, (_, i) => ({
      ...makeRun({ table: 'task_run_v2', index: i }),
      status: i % 4 === 0 ? 'CRASHED' : 'PENDING',
    })),
  );
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  for (const args of [['migrate'], ['backfill']]) {
    const step = cli(args);
    expect(await step.exit, step.output()).toBe(0);
  }
});

const cli = (args: string[]): CliProcess => workspace.cli(args);

const run = (args: string[]) => cli(args).finished();

it('lists as an aligned table with the next page, counts, and prints JSON with --json', async () => {
  const list = await run(['runs', 'list', ...SCOPE, '--limit', '5']);
  expect(list.code, list.output).toBe(0);
  expect(list.output).toMatch(/^id\s+task\s+status\s+created/m);
  expect(list.output.match(/^run_/gm)).toHaveLength(5);
  const cursor = /next page: --cursor (\S+)/.exec(list.output)?.[1] as string;
  const second = await run(['runs', 'list', ...SCOPE, '--limit', '5', '--cursor', cursor, '--json']);
  const page = JSON.parse(second.stdout) as { runs: Array<{ createdAt: string }>; previousCursor: string };
  expect(page.runs).toHaveLength(5);
  expect(page.previousCursor).toBeTruthy();

  const count = await run(['runs', 'count', ...SCOPE, '--status', 'CRASHED', '--json']);
  expect(JSON.parse(count.stdout)).toEqual({ count: 30 });
  const stats = await run(['runs', 'stats', ...SCOPE, '--to', '2026-11-02']);
  expect(stats.code, stats.output).toBe(0);
  expect(stats.output).toContain('12h buckets'); // 32 days: the first ladder width giving at most 100
});

it('rejects bad input with one sentence', async () => {
  const status = await run(['runs', 'list', ...SCOPE, '--status', 'DONE']);
  expect(status.code).toBe(2); // a usage mistake
  expect(status.output).toContain('unknown status "DONE"');
  const limit = await run(['runs', 'list', ...SCOPE, '--limit', '1000']);
  expect(limit.output).toContain('--limit must be a whole number from 1 to 100');
  const cursor = await run(['runs', 'list', ...SCOPE, '--cursor', 'xyz']);
  expect(cursor.output).toContain('malformed cursor');
});

it('while replicate holds the directory: says what to do, and answers through its API (metrics beside it)', async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  // A routed target too: another migrated database, so the daemon opens and checks both.
  const eu = await workspace.routedTarget('eu', 'org_eu');
  const daemon = workspace.cli(['replicate', '--api-port', String(port), '--metrics-port', String(metricsPort)], {
    LOG_LEVEL: 'info',
    ...eu.env,
  });
  try {
    await waitForSlot(workspace.pgdb.sql, slot, true);
    if (!usingClickHouseServer()) {
      // Only the embedded engine allows one process per data directory.
      const blocked = await run(['runs', 'count', ...SCOPE]);
      expect(blocked.code).toBe(2); // could not run
      expect(blocked.output).toContain('--api-url http://127.0.0.1:8080');
    }

    const via = await run(['runs', 'count', ...SCOPE, '--status', 'CRASHED', '--api-url', `http://127.0.0.1:${port}`]);
    expect(via.code, via.output).toBe(0);
    expect(via.output.trim()).toBe('30 runs');

    // A routed organization's runs land in the eu database, and the API answers for them from there.
    const euRuns = Array.from({ length: 6 }, (_, i) => makeRun({ table: 'task_run_v2', index: 500 + i, organizationId: 'org_eu' }));
    await insertRuns(workspace.pgdb.sql, 'task_run_v2', euRuns);
    const euCount = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/runs/count?org=org_eu&project=proj_1&env=env_prod&from=2026-10-01`);
      return ((await response.json()) as { count: number }).count;
    };
    await waitFor('the routed runs, through the API', async () => (await euCount()) === 6);
    const defaultCount = await run(['runs', 'count', ...SCOPE, '--api-url', `http://127.0.0.1:${port}`]);
    expect(defaultCount.output.trim()).toBe('120 runs'); // org_1's runs, from the default target

    const ok = await fetch(`http://127.0.0.1:${port}/runs?org=org_1&project=proj_1&env=env_prod&from=2026-10-01&limit=3&status=PENDING`);
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { runs: Array<{ status: string }> };
    expect(body.runs.map((r) => r.status)).toEqual(['PENDING', 'PENDING', 'PENDING']);
    const bad = await fetch(`http://127.0.0.1:${port}/runs?org=org_1&project=proj_1`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('env is required');
    expect((await fetch(`http://127.0.0.1:${port}/runs`, { method: 'POST' })).status).toBe(405);
    // The same process serves its metrics and readiness.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);
    expect(daemon.output()).toContain('routing organizations to ClickHouse targets');
    expect(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).toContain('runs_cdc_replication_lag_bytes');
  } finally {
    daemon.child.kill('SIGTERM');
    expect(await daemon.exit, daemon.output()).toBe(0);
  }
});

it('status: slot, identity, FINAL and raw counts, backfills; exit 1 when something needs fixing', async () => {
  const slotLag = async () => {
    const { rows } = await workspace.pgdb.sql.query<{ lag: string }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    return Number(rows[0]?.lag);
  };
  const lagBefore = await slotLag();
  const ok = await run(['status', '--json']);
  const lagAfter = await slotLag();
  expect(ok.code, ok.output).toBe(0);
  const report = JSON.parse(ok.stdout) as {
    slot: { exists: boolean; plugin: string; lagBytes: number };
    tables: Array<{ table: string; replicaIdentity: string }>;
    clickhouse: { rows: Array<{ sourceTable: string; final: number; raw: number }>; backfills: Array<{ status: string }> };
    problems: string[];
  };
  expect(report.slot).toMatchObject({ exists: true, plugin: 'pgoutput' });
  // What the slot holds back, read while status ran (nothing consumes the slot now).
  expect(report.slot.lagBytes).toBeGreaterThanOrEqual(lagBefore);
  expect(report.slot.lagBytes).toBeLessThanOrEqual(lagAfter);
  expect(report.tables.map((t) => t.replicaIdentity)).toEqual(['FULL', 'FULL']);
  expect(report.clickhouse.rows).toEqual([
    { sourceTable: 'TaskRun', final: 0, raw: 0 },
    { sourceTable: 'task_run_v2', final: 120, raw: 120 },
  ]);
  expect(report.clickhouse.backfills[0]?.status).toBe('SUCCESS');
  expect(report.problems).toEqual([]);
  expect((await run(['status'])).output).toMatch(/\nOK$/m);

  // The same checks, and sentences, as replicate's preflight.
  await workspace.pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
  await workspace.pgdb.sql.query(`ALTER PUBLICATION runs_cdc SET (publish = 'insert, update, delete')`);
  try {
    const degraded = await run(['status']);
    expect(degraded.code).toBe(1);
    expect(degraded.output).toContain('"task_run_v2" has REPLICA IDENTITY DEFAULT, but runs-cdc needs FULL');
    expect(degraded.output).toContain('run ALTER TABLE "task_run_v2" REPLICA IDENTITY FULL');
    expect(degraded.output).toContain('publication runs_cdc does not publish truncate');
  } finally {
    await workspace.pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY FULL');
    await workspace.pgdb.sql.query(`ALTER PUBLICATION runs_cdc SET (publish = 'insert, update, delete, truncate')`);
  }
  const missing = workspace.cli(['status'], { RUNS_CDC_SLOT: 'no_such_slot' });
  expect(await missing.exit).toBe(1);
  expect(missing.output()).toContain('replication slot no_such_slot does not exist');
});
