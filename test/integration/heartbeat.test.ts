/**
 * --heartbeat-interval-ms: with the published tables idle, the daemon's logical messages give the
 * slot WAL of its own database to pass, and the confirmed position keeps moving.
 */
import { expect, it } from 'vitest';
import { startPostgres } from '../../src/embedded/postgres.ts';
import { startDaemon } from '../support/daemon.ts';
import { freshClickHouseDatabase, freshPostgres, slotConfirmedLsn, testClickHouse, waitFor } from '../support/databases.ts';

it('heartbeats move an idle slot forward', async () => {
  // A private cluster: nothing else writes WAL, so only the heartbeats can move the slot.
  const server = await startPostgres();
  const pgdb = await freshPostgres(server.url);
  try {
    const ch = await testClickHouse();
    const daemon = await startDaemon(pgdb, ch, await freshClickHouseDatabase(ch), { heartbeatIntervalMs: 100, statusIntervalMs: 200 });
    try {
      await daemon.caughtUp();
      const start = await slotConfirmedLsn(pgdb.sql, daemon.config.slot);
      await waitFor('heartbeats', () => daemon.daemon.stats.heartbeats >= 5);
      await waitFor('the slot to move past the heartbeats', async () => (await slotConfirmedLsn(pgdb.sql, daemon.config.slot)) > start);
      expect(daemon.daemon.stats.heartbeats).toBeGreaterThanOrEqual(5);
      expect(await slotConfirmedLsn(pgdb.sql, daemon.config.slot)).toBeGreaterThan(start);
    } finally {
      await daemon.stop();
    }
  } finally {
    await pgdb.close();
    await server.stop();
  }
});
