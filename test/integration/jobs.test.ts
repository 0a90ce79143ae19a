/**
 * Operating the embedded box without stopping it: while `replicate` holds the chDB directory and a
 * workload writes, `backfill`, `backfill --list`, `verify`, `status` and `dead-letters list` run
 * through the daemon (`--api-url`), with the command's output and exit codes; at the end ClickHouse
 * equals Postgres column for column.
 */
import { expect, it } from 'vitest';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../../src/demo/workload.ts';
import { freePort } from '../../src/embedded/postgres.ts';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { CLI_DATABASE, cliClickHouse, usingClickHouseServer } from '../support/backends.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { cliWorkspace } from '../support/cli.ts';
import { slotConfirmedLsn, waitFor, waitForSlot } from '../support/databases.ts';

const workspace = cliWorkspace('jobs');
const HISTORY_PER_TABLE = 1500;

it('backfill, verify, status and dead-letters run in the live daemon while a workload writes', async () => {
  const { pgdb, slot, chdbPath } = workspace;
  // History: rows older than the slot, which only a backfill copies.
  for (const table of SOURCE_TABLES) {
    const runs = Array.from({ length: HISTORY_PER_TABLE }, (_, i) =>
      makeRun({ table, index: i, createdAt: new Date(Date.UTC(2026, 9, 1) + i * 1000) }),
    );
    for (let offset = 0; offset < runs.length; offset += 500) await insertRuns(pgdb.sql, table, runs.slice(offset, offset + 500));
  }
  // Older still, and left out of the backfill: verify finds them missing, verify --repair copies them.
  const september = Array.from({ length: 30 }, (_, i) =>
    makeRun({ table: 'TaskRun', index: 5000 + i, createdAt: new Date(Date.UTC(2026, 8, 15) + i * 1000) }),
  );
  await insertRuns(pgdb.sql, 'TaskRun', september);
  const migrated = await workspace.cli(['migrate']).finished();
  expect(migrated.code, migrated.output).toBe(0);
  const metricsPort = await freePort();
  const daemon = workspace.cli(['replicate', '--metrics-port', String(metricsPort)], { LOG_LEVEL: 'info' });
  const api = ['--api-url', `http://127.0.0.1:${metricsPort}`];
  let writing = true;
  let workload: Promise<void> = Promise.resolve();
  try {
    await waitForSlot(pgdb.sql, slot, true);
    if (!usingClickHouseServer()) {
      const blocked = await workspace.cli(['backfill', '--list']).finished();
      expect(blocked.code).toBe(2); // could not run: the directory is locked
      expect(blocked.output).toContain('is open in another process');
    }

    // New runs, updates and deletes, also of history rows the backfill is copying.
    workload = (async () => {
      for (let round = 0; writing; round++) {
        const table = SOURCE_TABLES[round % 2] ?? 'TaskRun';
        const runs = Array.from({ length: 20 }, (_, i) => makeRun({ table, index: 10_000 + round * 20 + i }));
        await insertRuns(pgdb.sql, table, runs);
        await completeRuns(pgdb.sql, table, [runs[0]?.id as string], new Date());
        const history = await pgdb.sql.query<{ id: string }>(
          `SELECT id FROM "${table}" WHERE "createdAt" >= '2026-10-01' AND "createdAt" < '2026-11-01' ORDER BY random() LIMIT 2`,
        );
        await completeRuns(pgdb.sql, table, [history.rows[0]?.id as string], new Date());
        await deleteRuns(pgdb.sql, table, [history.rows[1]?.id as string]);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const backfill = await workspace.cli(['backfill', '--profile', 'ci', '--from', '2026-10-01', '--to', '2026-11-01', ...api]).finished();
    expect(backfill.code, backfill.output).toBe(0);
    expect(backfill.stdout).toMatch(/^backfill bf_\S+ SUCCESS: /m);
    expect(backfill.output).toContain('"msg":"backfill progress"'); // the job's log lines (progress) come back too
    const jobId = /backfill (bf_\S+) SUCCESS/.exec(backfill.stdout)?.[1] as string;

    const list = await workspace.cli(['backfill', '--list', ...api]).finished();
    expect(list.code, list.output).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${jobId}\\s+SUCCESS`));

    const letters = await workspace.cli(['dead-letters', 'list', ...api]).finished();
    expect([letters.code, letters.stdout.trim()]).toEqual([0, 'no dead letters']);

    // A usage error is the command's own, with its exit code: 2, could not run.
    const bad = await workspace.cli(['verify', '--window-hours', 'x', ...api]).finished();
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--window-hours must be a positive integer');

    writing = false;
    await workload;
    const end = await currentWalLsn(pgdb.sql);
    await waitFor('the daemon to confirm the workload', async () => (await slotConfirmedLsn(pgdb.sql, slot)) >= end);

    const differing = await workspace.cli(['verify', '--json', ...api]).finished();
    expect(differing.code, differing.output).toBe(1);
    const report = JSON.parse(differing.stdout) as { equal: boolean; differences: { kind: string }[] };
    expect(report.equal).toBe(false);
    expect(report.differences.map((d) => d.kind)).toEqual(september.map(() => 'missing'));
    const repair = await workspace.cli(['verify', '--repair', ...api]).finished();
    expect(repair.code, repair.output).toBe(0); // it reports what it found, repairs, and the re-check is equal
    expect(repair.stdout).toContain(`repaired: ${september.length} copied, 0 tombstoned`);
    expect(repair.stdout).toContain('after the repair: EQUAL');

    const verify = await workspace.cli(['verify', '--json', ...api]).finished();
    expect(verify.code, verify.output).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ equal: true, differences: [] });

    const status = await workspace.cli(['status', '--json', ...api]).finished();
    expect(status.code, status.output).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ problems: [] });
  } finally {
    writing = false;
    await workload.catch(() => {});
    daemon.child.kill('SIGINT');
    expect(await daemon.exit, daemon.output()).toBe(0);
  }
  // The daemon is gone: this process may open the directory and compare column for column.
  const ch = await cliClickHouse(chdbPath);
  try {
    expect(await expectClickHouseEqualsPostgres(pgdb, ch, CLI_DATABASE)).toBeGreaterThan(2 * HISTORY_PER_TABLE);
  } finally {
    await ch.close();
  }
}, 180_000); // seven runs-cdc processes and a backfill beside a workload: about 45 s on 2 busy cores
