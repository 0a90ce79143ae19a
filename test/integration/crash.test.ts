/**
 * The `runs-cdc replicate` process, killed without warning mid-stream and restarted: ClickHouse
 * ends equal to Postgres. Then a graceful SIGTERM exits 0. The daemon runs as a real child
 * process on a persistent chDB directory, which this process opens only after the child is gone
 * (chDB allows one process per directory).
 */
import { expect, it } from 'vitest';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../../src/demo/workload.ts';
import { currentWalLsn, readSlot } from '../../src/source/preflight.ts';
import { CLI_DATABASE, cliClickHouse } from '../support/backends.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { slotConfirmedLsn, waitFor } from '../support/databases.ts';

const workspace = cliWorkspace('crash', { RUNS_CDC_FLUSH_INTERVAL_MS: '50', RUNS_CDC_BATCH_ROWS: '500' });
const { slot, chdbPath } = workspace;

const cli = (args: string[]): CliProcess => workspace.cli(args);

async function slotActive(active: boolean): Promise<void> {
  await waitFor(`the slot to be ${active ? 'active' : 'free'}`, async () => {
    return (await readSlot(workspace.pgdb.sql, slot))?.active === active;
  });
}

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

  const expected = await workspace.pgdb.sql.query<{ id: string; status: string; updated: string }>(
    `SELECT id, status::text, to_char("updatedAt", 'YYYY-MM-DD HH24:MI:SS.MS') AS updated FROM "TaskRun"
     UNION ALL SELECT id, status::text, to_char("updatedAt", 'YYYY-MM-DD HH24:MI:SS.MS') FROM task_run_v2 ORDER BY id`,
  );
  const ch = await cliClickHouse(chdbPath);
  try {
    const result = await ch.query({
      query: `SELECT run_id AS id, status, toString(updated_at) AS updated FROM ${CLI_DATABASE}.task_runs_v2 FINAL WHERE _is_deleted = 0 ORDER BY id`,
      format: 'JSONEachRow',
    });
    const actual = await result.json<{ id: string; status: string; updated: string }>();
    const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    expect(actual.length).toBe(expected.rows.length);
    expect(actual.sort(byId)).toEqual(expected.rows.sort(byId));
    expect(expected.rows.length).toBeLessThan(ids.length); // deletes happened, and are reflected
  } finally {
    await ch.close();
  }
});
