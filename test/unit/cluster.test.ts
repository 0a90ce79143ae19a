import { describe, expect, it } from 'vitest';
import { loadMigrations, migrationStatements } from '../../src/sink/migrations.ts';

const single = migrationStatements('runs', loadMigrations());
const cluster = migrationStatements('runs', loadMigrations(), 'main');
const creates = single.filter((s) => s.startsWith('CREATE TABLE'));
const alters = single.filter((s) => s.startsWith('ALTER TABLE'));
const columnsOf = (ddl: string) => ddl.slice(ddl.indexOf('('), ddl.indexOf('ENGINE')).replace(/\s+/g, ' ').trim();

describe('migrate --cluster', () => {
  it('makes every table a replicated local table behind a Distributed one, ON CLUSTER', () => {
    expect(cluster[0]).toBe('CREATE DATABASE IF NOT EXISTS runs ON CLUSTER main');
    const tables = creates.map((s) => /runs\.(\w+)/.exec(s)?.[1]);
    expect(tables).toEqual([
      'runs_cdc_migrations',
      'task_runs_v2',
      'backfill_jobs',
      'backfill_checkpoints',
      'dead_letters',
      'replication_slots',
    ]);
    expect(cluster).toHaveLength(1 + 2 * tables.length + alters.length);
    for (const [i, table] of tables.entries()) {
      // Each CREATE becomes its local table, then the Distributed one over it, where the CREATE was.
      const at = cluster.findIndex((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS runs.${table}_local ON CLUSTER`));
      const local = cluster[at] as string;
      const distributed = cluster[at + 1] as string;
      expect(local).toContain(`CREATE TABLE IF NOT EXISTS runs.${table}_local ON CLUSTER main`);
      expect(local).toContain(`ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/${table}_local', '{replica}'`);
      expect(columnsOf(local)).toBe(columnsOf(creates[i] as string)); // the same columns, exactly
      expect(distributed).toContain(`CREATE TABLE IF NOT EXISTS runs.${table} ON CLUSTER main AS runs.${table}_local`);
      expect(distributed).toContain(`ENGINE = Distributed(main, runs, ${table}_local,`);
    }
  });

  it('keeps the version and tombstone columns, partitioning and sort key of the runs table, sharded by organization', () => {
    const local = cluster.find((s) => s.includes('runs.task_runs_v2_local')) as string;
    expect(local).toContain("'{replica}', _version, _is_deleted)");
    expect(local).toContain('PARTITION BY toYYYYMM(created_at)');
    expect(local).toContain('ORDER BY (organization_id, project_id, environment_id, created_at, run_id)');
    const distributed = cluster.find((s) => s.includes('runs.task_runs_v2 ON CLUSTER')) as string;
    expect(distributed).toMatch(/Distributed\(main, runs, task_runs_v2_local, cityHash64\(organization_id\)\)$/);
  });

  it('sets table settings on the local tables, which hold the parts', () => {
    expect(alters).toEqual(['ALTER TABLE runs.task_runs_v2 MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 8192']);
    expect(cluster.filter((s) => s.startsWith('ALTER TABLE'))).toEqual([
      'ALTER TABLE runs.task_runs_v2_local ON CLUSTER main MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 8192',
    ]);
  });

  it('refuses a cluster name it would have to quote', () => {
    expect(() => migrationStatements('runs', loadMigrations(), 'main; DROP')).toThrow(/ClickHouse cluster/);
  });
});
