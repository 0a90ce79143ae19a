/**
 * Migrations for a ClickHouse cluster (`runs-cdc migrate --cluster NAME`): every table of the
 * single-server migrations becomes, ON CLUSTER, a ReplicatedReplacingMergeTree `<name>_local` on
 * each shard plus a Distributed `<name>` over them with the same columns, which is what runs-cdc
 * reads and writes. The runs table is sharded by organization, so every version and tombstone of
 * a run lands on one shard and FINAL stays shard-local (a sort-key move to another organization
 * tombstones the old key on the old shard, since the tombstone carries the old organization).
 */
import { assertIdentifier } from '../schema/tables.ts';

/** Sharding key per table: all rows FINAL must see together share a shard. */
const SHARDING_KEYS: Record<string, string> = {
  task_runs_v2: 'cityHash64(organization_id)',
  backfill_jobs: 'cityHash64(job_id)',
  backfill_checkpoints: 'cityHash64(job_id)',
  dead_letters: 'cityHash64(run_id)',
  replication_slots: 'cityHash64(slot)',
  runs_cdc_migrations: 'version',
};

const CREATE_TABLE =
  /^CREATE TABLE IF NOT EXISTS \{\{database\}\}\.(\w+)\s*\(([\s\S]*?)\)\s*ENGINE\s*=\s*ReplacingMergeTree(?:\(([^)]*)\))?([\s\S]*)$/;

/** A table setting: it belongs to the local tables, which store the parts. */
const MODIFY_SETTING = /^ALTER TABLE \{\{database\}\}\.(\w+)\s+(MODIFY SETTING [\s\S]*)$/;

/** The cluster form of one migration statement: CREATE TABLE or ALTER TABLE ... MODIFY SETTING. */
export function clusterStatements(statement: string, cluster: string): string[] {
  assertIdentifier(cluster, 'ClickHouse cluster');
  const setting = MODIFY_SETTING.exec(statement.trim());
  if (setting) return [`ALTER TABLE {{database}}.${setting[1]}_local ON CLUSTER ${cluster} ${setting[2]}`];
  const m = CREATE_TABLE.exec(statement.trim());
  if (!m) throw new Error(`cannot translate this migration statement for a cluster: ${statement.slice(0, 80)}`);
  const [, table = '', columns = '', engineArgs = '', rest = ''] = m;
  const key = SHARDING_KEYS[table];
  if (!key) throw new Error(`no sharding key for table ${table}: add it to SHARDING_KEYS`);
  const zkPath = `'/clickhouse/tables/{shard}/{database}/${table}_local'`;
  const args = [zkPath, "'{replica}'", ...(engineArgs.trim() ? [engineArgs.trim()] : [])].join(', ');
  return [
    `CREATE TABLE IF NOT EXISTS {{database}}.${table}_local ON CLUSTER ${cluster}\n(${columns})\nENGINE = ReplicatedReplacingMergeTree(${args})${rest}`,
    `CREATE TABLE IF NOT EXISTS {{database}}.${table} ON CLUSTER ${cluster} AS {{database}}.${table}_local\nENGINE = Distributed(${cluster}, {{database}}, ${table}_local, ${key})`,
  ];
}

export function createDatabaseStatement(database: string, cluster?: string): string {
  return `CREATE DATABASE IF NOT EXISTS ${assertIdentifier(database, 'ClickHouse database')}${cluster ? ` ON CLUSTER ${assertIdentifier(cluster, 'ClickHouse cluster')}` : ''}`;
}
