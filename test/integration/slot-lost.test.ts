/**
 * A slot invalidated because it held more WAL than max_slot_wal_keep_size: the daemon refuses to
 * start, says data may be missing and gives the recovery; status reports it and exits 1.
 */
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { ReplicationDaemon } from '../../src/replication/daemon.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { runCli } from '../support/cli.ts';
import { freshClickHouseDatabase, invalidateSlot, testClickHouse, withOwnPostgres } from '../support/databases.ts';

it('a lost slot stops the daemon with the recovery, and status exits 1', async () => {
  const settings = ['max_slot_wal_keep_size=1MB', 'wal_keep_size=0', 'min_wal_size=32MB', 'max_wal_size=32MB'];
  await withOwnPostgres(
    async (pgdb) => {
      await pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
      await pgdb.sql.query(`SELECT pg_create_logical_replication_slot('lost_slot', 'pgoutput')`);
      await invalidateSlot(pgdb.sql, 'lost_slot');

      const ch = await testClickHouse();
      const config = loadConfig({ databaseUrl: pgdb.url, clickhouseDatabase: await freshClickHouseDatabase(ch), slot: 'lost_slot' }, {});
      const daemon = new ReplicationDaemon(pgdb.url, config, RunsTable.fromConfig(ch, config, silentLogger), silentLogger);
      await expect(daemon.run()).rejects.toThrow(/slot lost_slot is invalidated \(wal_status=lost\).*backfill --mode repair/);

      const status = runCli(['status'], { DATABASE_URL: pgdb.url, RUNS_CDC_SLOT: 'lost_slot', CHDB_PATH: ':memory:' });
      expect(await status.exit).toBe(1);
      expect(status.output()).toContain('replication slot lost_slot is invalidated (wal_status=lost)');
    },
    { settings },
  );
});
