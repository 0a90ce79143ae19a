/**
 * Reconnect hygiene: DROP PUBLICATION under a running daemon. Every later change fails to decode
 * (recreating the publication cannot help), so the daemon stops with the recovery written out
 * instead of reconnecting forever, and no failed attempt leaves its walsender behind.
 */
import { expect, it } from 'vitest';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

it('a dropped publication stops the daemon with the recovery, and walsenders of its database stay <= 1 for 10 s, then 0', async () => {
  const { pgdb } = env;
  const replication = await env.start();
  const slot = replication.config.slot;
  await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 1 })]);
  await replication.caughtUp();

  await pgdb.sql.query('DROP PUBLICATION runs_cdc');
  await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 2 })]);
  const ended = replication.running.then(
    () => undefined,
    (error: Error) => error,
  );

  // Sampled for 10 s: a leaking reconnect loop (retries every 50-200 ms here) fills this quickly.
  const walsenders = async () => {
    const { rows } = await pgdb.sql.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = current_database()`,
    );
    return Number(rows[0]?.n);
  };
  let most = 0;
  for (const until = Date.now() + 10_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
    most = Math.max(most, await walsenders());
  }
  expect(most).toBeLessThanOrEqual(1);
  const error = await ended;
  expect(error?.message).toContain(
    `publication runs_cdc was dropped while slot ${slot} still had changes after it, and recreating it does not help; recover with SELECT pg_drop_replication_slot('${slot}'); then runs-cdc replicate --recreate-slot`,
  );
  expect(replication.daemon.stats.reconnects).toBe(0);
  expect(await walsenders()).toBe(0);
});
