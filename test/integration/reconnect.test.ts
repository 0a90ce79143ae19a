/**
 * The replication connection dropped under a running workload (the walsender terminated, three
 * times): the daemon reconnects from the slot and ClickHouse ends equal to Postgres, each run
 * once under FINAL.
 */
import { expect, it } from 'vitest';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../../src/demo/workload.ts';
import { readSlot } from '../../src/source/preflight.ts';
import { expectClickHouseEqualsPostgres, maxRowsPerRun } from '../support/backfill.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { testClickHouse, waitFor } from '../support/databases.ts';

const env = freshEnvironmentPerTest();

it('reconnects after the walsender is terminated, three times mid-workload; nothing lost or doubled', async () => {
  const replication = await env.start({ batchRows: 300 });
  const sql = env.pgdb.sql;
  const slot = replication.config.slot;
  let terminated = 0;
  for (let batch = 0; batch < 24; batch++) {
    const table = batch % 2 === 0 ? 'TaskRun' : 'task_run_v2';
    const runs = Array.from({ length: 250 }, (_, i) => makeRun({ table, index: batch * 250 + i }));
    await insertRuns(sql, table, runs);
    await completeRuns(
      sql,
      table,
      runs.filter((_, i) => i % 3 === 0).map((r) => r.id),
      new Date(),
    );
    await deleteRuns(
      sql,
      table,
      runs.filter((_, i) => i % 7 === 0).map((r) => r.id),
    );
    if (batch % 8 === 4) {
      const pid = await waitFor('the daemon to hold the slot', async () => (await readSlot(sql, slot))?.activePid ?? undefined);
      await sql.query('SELECT pg_terminate_backend($1)', [pid]);
      terminated += 1;
    }
  }
  await replication.caughtUp();
  expect(terminated).toBe(3);
  expect(replication.daemon.stats.reconnects).toBeGreaterThanOrEqual(3);
  const ch = await testClickHouse();
  await expectClickHouseEqualsPostgres(env.pgdb, ch, env.database);
  expect(await maxRowsPerRun(ch, env.database)).toBe(1);
  expect(replication.daemon.streaming).toBe(true);
});
