/**
 * Signals to the real `runs-cdc replicate` process while ClickHouse rejects every insert: the
 * first SIGTERM starts a graceful stop that keeps trying to flush (it never confirms unwritten
 * changes), and a second one exits at once — with the slot still where ClickHouse's data ends.
 */
import { drainPending } from 'chdb';
import { expect, it } from 'vitest';
import { CLI_DATABASE, cliClickHouse } from '../support/backends.ts';
import { cliWorkspace } from '../support/cli.ts';
import { refuseInserts, unconfirmedInSlot, waitFor, waitForSlot } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const workspace = cliWorkspace('shutdown', { RUNS_CDC_RETRY_MAX_MS: '200' });
const { slot, chdbPath } = workspace;

it('a second SIGTERM exits at once while the first is still flushing; nothing unwritten is confirmed', async () => {
  const migrate = workspace.cli(['migrate']);
  expect(await migrate.exit, migrate.output()).toBe(0);

  // The slot exists before ClickHouse holds a row: a missing slot over rows would be a gap
  // (replicate refuses it, see slot-identity.test.ts). The publication before the slot.
  await workspace.pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  // Make every insert into November 2026 fail with TOO_MANY_PARTS (transient: retried forever).
  const ch = await cliClickHouse(chdbPath);
  await ch.insert({
    table: `${CLI_DATABASE}.task_runs_v2`,
    values: [
      {
        run_id: 'filler',
        created_at: '2026-11-15 00:00:00.000',
        updated_at: '2026-11-15 00:00:00.000',
        tags: [],
        bulk_action_group_ids: [],
      },
    ],
    format: 'JSONEachRow',
  });
  await refuseInserts(ch, CLI_DATABASE, true);
  await ch.close();
  await drainPending();

  const daemon = workspace.cli(['replicate']);
  await waitForSlot(workspace.pgdb.sql, slot, true);
  await insertRuns(workspace.pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 1 })]);
  await waitFor('a failed insert', () => daemon.output().includes('retrying'));

  daemon.child.kill('SIGTERM');
  await waitFor('the graceful stop to begin', () => daemon.output().includes('stopping: flushing'));
  await new Promise((r) => setTimeout(r, 500));
  expect(daemon.child.exitCode).toBe(null); // still trying to write what it received

  daemon.child.kill('SIGTERM');
  expect(await daemon.exit, daemon.output()).toBe(130);
  expect(daemon.output()).toContain('second signal');
  // Nothing unwritten was confirmed: the slot still holds the insert (idle keepalives before it
  // may have moved the slot over other databases' WAL, never over it).
  expect(await unconfirmedInSlot(workspace.pgdb.sql, slot, 'I')).toBe(1);
});
