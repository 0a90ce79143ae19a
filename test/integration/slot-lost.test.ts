/**
 * A slot invalidated because it held more WAL than max_slot_wal_keep_size: the daemon refuses to
 * start, says data may be missing and gives the recovery; status reports it and exits 1.
 */
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { ReplicationDaemon } from '../../src/replication/daemon.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { readSlot } from '../../src/source/catalog.ts';
import { runCli } from '../support/cli.ts';
import { freshClickHouseDatabase, testClickHouse, waitFor, withOwnPostgres } from '../support/databases.ts';

it('a lost slot stops the daemon with the recovery, and status exits 1', async () => {
  const settings = ['max_slot_wal_keep_size=1MB', 'wal_keep_size=0', 'min_wal_size=32MB', 'max_wal_size=32MB'];
  await withOwnPostgres(
    async (pgdb) => {
      await pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
      await pgdb.sql.query(`SELECT pg_create_logical_replication_slot('lost_slot', 'pgoutput')`);
      // Nobody reads the slot while WAL far beyond the 1 MB it may keep is written and recycled.
      await pgdb.sql.query('CREATE TABLE filler (body text)');
      await waitFor(
        'the slot to be invalidated',
        async () => {
          await pgdb.sql.query(`INSERT INTO filler SELECT md5(random()::text) || repeat('x', 1000) FROM generate_series(1, 20000)`);
          await pgdb.sql.query('SELECT pg_switch_wal()');
          await pgdb.sql.query('CHECKPOINT');
          return (await readSlot(pgdb.sql, 'lost_slot'))?.walStatus === 'lost';
        },
        60_000,
      );

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
