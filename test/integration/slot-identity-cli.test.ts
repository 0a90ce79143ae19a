/**
 * The same promise through the real `runs-cdc replicate` process: a slot dropped while it was
 * stopped makes it exit 1 with the fix, and `--recreate-slot` repairs the gap (logged) while it
 * streams, ending equal to Postgres.
 */
import { expect, it } from 'vitest';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { CLI_DATABASE, cliClickHouse } from '../support/backends.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { cliWorkspace } from '../support/cli.ts';
import { slotConfirmedLsn, waitFor, waitForSlot } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const workspace = cliWorkspace('slot-identity', { RUNS_CDC_FLUSH_INTERVAL_MS: '50' });
const { slot, chdbPath } = workspace;

const caughtUp = async () => {
  const walEnd = await currentWalLsn(workspace.pgdb.sql);
  await waitFor('the daemon to catch up', async () => (await slotConfirmedLsn(workspace.pgdb.sql, slot)) >= walEnd, 60_000);
};

it('replicate refuses a dropped slot over replicated rows, and --recreate-slot repairs the gap', async () => {
  const { sql } = workspace.pgdb;
  expect(await workspace.cli(['migrate']).exit).toBe(0);
  let daemon = workspace.cli(['replicate']);
  await waitForSlot(sql, slot, true);
  const runs = Array.from({ length: 20 }, (_, i) => makeRun({ table: 'TaskRun', index: i }));
  await insertRuns(sql, 'TaskRun', runs);
  await caughtUp();
  daemon.child.kill('SIGTERM');
  expect(await daemon.exit, daemon.output()).toBe(0);

  await sql.query('SELECT pg_drop_replication_slot($1)', [slot]);
  await deleteRuns(
    sql,
    'TaskRun',
    runs.slice(0, 5).map((r) => r.id),
  );
  await completeRuns(
    sql,
    'TaskRun',
    runs.slice(5, 10).map((r) => r.id),
    new Date(),
  );
  await insertRuns(sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 100 })]);

  const refused = await workspace.cli(['replicate']).finished();
  expect(refused.code).toBe(2); // could not run
  expect(refused.output).toContain(
    `runs-cdc: replication slot ${slot} does not exist, but ClickHouse already holds rows replicated from it, so changes made since it was lost would be missing silently: restart with runs-cdc replicate --recreate-slot`,
  );

  daemon = workspace.cli(['replicate', '--recreate-slot']);
  await waitFor('the repair to end', () => daemon.output().includes('is repaired: ClickHouse holds every change'), 60_000);
  await caughtUp();
  daemon.child.kill('SIGTERM');
  expect(await daemon.exit, daemon.output()).toBe(0);
  expect(daemon.output()).toContain('--recreate-slot: creating it, then repairing the gap');
  expect(daemon.output()).toContain('runs copied');

  const ch = await cliClickHouse(chdbPath);
  try {
    expect(await expectClickHouseEqualsPostgres(workspace.pgdb, ch, CLI_DATABASE)).toBe(16);
  } finally {
    await ch.close();
  }
});
