/**
 * --heartbeat-interval-ms: with the published tables idle, the daemon's logical messages give the
 * slot WAL of its own database to pass, and the confirmed position keeps moving.
 */
import { it } from 'vitest';
import { startDaemon } from '../support/daemon.ts';
import { freshClickHouseDatabase, slotConfirmedLsn, testClickHouse, waitFor, withOwnPostgres } from '../support/databases.ts';

it('heartbeats move an idle slot forward', async () => {
  // A server of its own: nothing else writes WAL, so only the heartbeats can move the slot.
  await withOwnPostgres(async (pgdb) => {
    const ch = await testClickHouse();
    const daemon = await startDaemon(pgdb, ch, await freshClickHouseDatabase(ch), { heartbeatIntervalMs: 100, statusIntervalMs: 200 });
    try {
      await daemon.caughtUp();
      const start = await slotConfirmedLsn(pgdb.sql, daemon.config.slot);
      await waitFor('heartbeats', () => daemon.daemon.stats.heartbeats >= 5);
      await waitFor('the slot to move past the heartbeats', async () => (await slotConfirmedLsn(pgdb.sql, daemon.config.slot)) > start);
    } finally {
      await daemon.stop();
    }
  });
});
