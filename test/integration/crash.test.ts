/**
 * The `runs-cdc replicate` process, killed without warning mid-stream and restarted: ClickHouse
 * ends equal to Postgres. Then a graceful SIGTERM exits 0. The daemon runs as a real child
 * process on a persistent chDB directory, which this process opens only after the child is gone
 * (chDB allows one process per directory).
 */
import { expect, it } from 'vitest';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { CLI_DATABASE, cliClickHouse } from '../support/backends.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { slotConfirmedLsn, waitFor, waitForSlot } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const workspace = cliWorkspace('crash', { RUNS_CDC_FLUSH_INTERVAL_MS: '50', RUNS_CDC_BATCH_ROWS: '500' });
const { slot, chdbPath } = workspace;

const cli = (args: string[]): CliProcess => workspace.cli(args);

const slotActive = (active: boolean) => waitForSlot(workspace.pgdb.sql, slot, active);

it('a daemon killed mid-stream and restarted leaves ClickHouse equal to Postgres', async () => {
  const migrate = cli(['migrate']);
  expect(await migrate.exit, migrate.output()).toBe(0);

  let daemon = cli(['replicate']);
  await slotActive(true);
  // Keep writing while the daemon is killed: some transactions are flushed, some buffered, some unread.
  const ids: string[] = [];
  for (let batch = 0; batch < 30; batch++) {
    const table = batch % 2 === 0 ? 'TaskRun' : 'task_run_v2';
    const runs = Array.from({ length: 200 }, (_, i) => makeRun({ table, index: batch * 200 + i }));
    await insertRuns(workspace.pgdb.sql, table, runs);
    await completeRuns(
      workspace.pgdb.sql,
      table,
      runs.filter((_, i) => i % 3 === 0).map((r) => r.id),
      new Date(),
    );
    await deleteRuns(
      workspace.pgdb.sql,
      table,
      runs.filter((_, i) => i % 7 === 0).map((r) => r.id),
    );
    ids.push(...runs.map((r) => r.id));
    if (batch === 10) {
      daemon.child.kill('SIGKILL');
      expect(await daemon.exit).toBe(null);
      await slotActive(false);
      daemon = cli(['replicate']);
    }
  }
  const walEnd = await currentWalLsn(workspace.pgdb.sql);
  await waitFor('the restarted daemon to catch up', async () => (await slotConfirmedLsn(workspace.pgdb.sql, slot)) >= walEnd, 60_000);

  daemon.child.kill('SIGTERM');
  expect(await daemon.exit, daemon.output()).toBe(0);
  expect(daemon.output()).toContain('stopped cleanly');

  const ch = await cliClickHouse(chdbPath);
  try {
    // Every run equal column for column; deletes happened, and are reflected.
    expect(await expectClickHouseEqualsPostgres(workspace.pgdb, ch, CLI_DATABASE)).toBeLessThan(ids.length);
  } finally {
    await ch.close();
  }
});
