import { describe, expect, it } from 'vitest';
import { openClickHouse, openRunsTable } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort } from '../../src/embedded/postgres.ts';
import { silentLogger } from '../../src/logger.ts';
import { migrate, pendingMigrations } from '../../src/sink/migrations.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { queryRows, testClickHouse, uniqueName } from '../support/databases.ts';

it('migrate is idempotent and records what it applied', async () => {
  const ch = await testClickHouse();
  const database = uniqueName('mig');
  expect(await pendingMigrations(ch, database)).toEqual([
    '001_task_runs_v2',
    '002_backfill_jobs',
    '003_dead_letters',
    '004_vertical_merges',
    '005_replication_slots',
  ]);
  expect(await migrate(ch, database)).toEqual([
    '001_task_runs_v2',
    '002_backfill_jobs',
    '003_dead_letters',
    '004_vertical_merges',
    '005_replication_slots',
  ]);
  expect(await migrate(ch, database)).toEqual([]);
  expect(await pendingMigrations(ch, database)).toEqual([]);
  const [engine] = await queryRows<{ engine_full: string }>(
    ch,
    `SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = 'task_runs_v2'`,
    {
      db: database,
    },
  );
  expect(engine?.engine_full).toMatch(
    /^ReplacingMergeTree\(_version, _is_deleted\) PARTITION BY toYYYYMM\(created_at\) ORDER BY \(organization_id, project_id, environment_id, created_at, run_id\)/,
  );
  // Merges column by column (bench/ huge-transaction: horizontal merges were the engine's largest use of memory).
  expect(engine?.engine_full).toContain('vertical_merge_algorithm_min_rows_to_activate = 8192');
});

it('the migrated table matches the column mapping exactly, and a drifted one is reported', async () => {
  const ch = await testClickHouse();
  const database = uniqueName('mig');
  await migrate(ch, database);
  const table = new RunsTable(ch, database, { initialDelayMs: 1, maxDelayMs: 1 }, silentLogger);
  expect(await table.schemaMismatches()).toEqual([]);
  await ch.command({ query: `ALTER TABLE ${database}.task_runs_v2 MODIFY COLUMN depth String` });
  await ch.command({ query: `ALTER TABLE ${database}.task_runs_v2 DROP COLUMN ttl` });
  expect(await table.schemaMismatches()).toEqual(['column ttl is missing', 'column depth is String, expected Int32']);
});

describe('before replicating, ClickHouse must be', () => {
  it('reachable: an unreachable server fails with where it looked', async () => {
    const port = await freePort(); // nothing listens there
    const config = loadConfig({ clickhouseUrl: `http://default:secret@127.0.0.1:${port}` }, {});
    await expect(openClickHouse(config)).rejects.toThrow(
      new RegExp(`ClickHouse \\(http://default:\\*\\*\\*@127.0.0.1:${port}/?\\) is not reachable.*check CLICKHOUSE_URL`),
    );
  });

  it('migrated: missing migrations fail with the command to run', async () => {
    const config = loadConfig({ clickhouseDatabase: uniqueName('unmigrated') }, {});
    await expect(openRunsTable(await testClickHouse(), config, silentLogger)).rejects.toThrow(
      `is missing migrations 001_task_runs_v2, 002_backfill_jobs, 003_dead_letters, 004_vertical_merges, 005_replication_slots: run runs-cdc migrate first`,
    );
  });
});
