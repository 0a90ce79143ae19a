/**
 * Numbered ClickHouse migrations from `clickhouse/NNN_name.sql`, applied in order and recorded in a
 * ledger table so `runs-cdc migrate` is idempotent. `{{database}}` in a file is the target database.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './clickhouse.ts';
import { clusterStatements, createDatabaseStatement } from './cluster.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../clickhouse/', import.meta.url));
export const LEDGER_TABLE = 'runs_cdc_migrations';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${dir}/${file}`, 'utf8');
      const statements = sql
        .split(/;\s*(?:\n|$)/)
        .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
        .filter(Boolean);
      return { version: Number.parseInt(file, 10), name: file.replace(/\.sql$/, ''), statements };
    });
}

async function appliedMigrations(client: ClickHouseClient, database: string): Promise<Set<number>> {
  const exists = await client.query({
    query: 'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {table:String}',
    query_params: { db: database, table: LEDGER_TABLE },
    format: 'JSONEachRow',
  });
  const [{ n } = { n: '0' }] = await exists.json<{ n: string }>();
  if (Number(n) === 0) return new Set();
  const result = await client.query({
    query: `SELECT version FROM ${database}.${LEDGER_TABLE}`,
    format: 'JSONEachRow',
  });
  return new Set((await result.json<{ version: number }>()).map((r) => Number(r.version)));
}

const LEDGER_DDL = `CREATE TABLE IF NOT EXISTS {{database}}.${LEDGER_TABLE}
      (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3))
      ENGINE = ReplacingMergeTree ORDER BY version`;

/** A statement for one server, or its ON CLUSTER form (replicated tables behind Distributed
 * ones, see cluster.ts), with the database filled in. */
function forTarget(statement: string, database: string, cluster?: string): string[] {
  return (cluster ? clusterStatements(statement, cluster) : [statement]).map((s) => s.replaceAll('{{database}}', database));
}

/** Every statement `migrate` runs on an empty target: database, ledger, then each migration. */
export function migrationStatements(database: string, migrations: readonly Migration[], cluster?: string): string[] {
  return [
    createDatabaseStatement(database, cluster),
    ...[LEDGER_DDL, ...migrations.flatMap((m) => m.statements)].flatMap((s) => forTarget(s, database, cluster)),
  ];
}

/** Apply what is not applied yet. Returns the names of the migrations applied now. */
export async function migrate(client: ClickHouseClient, database: string, cluster?: string): Promise<string[]> {
  assertIdentifier(database, 'ClickHouse database');
  for (const statement of migrationStatements(database, [], cluster)) await client.command({ query: statement });
  const applied: string[] = [];
  for (const migration of await unappliedMigrations(client, database)) {
    for (const statement of migration.statements.flatMap((s) => forTarget(s, database, cluster))) {
      await client.command({ query: statement });
    }
    await client.insert({
      table: `${database}.${LEDGER_TABLE}`,
      values: [{ version: migration.version, name: migration.name }],
      format: 'JSONEachRow',
    });
    applied.push(migration.name);
  }
  return applied;
}

async function unappliedMigrations(client: ClickHouseClient, database: string): Promise<Migration[]> {
  const done = await appliedMigrations(client, database);
  return loadMigrations().filter((m) => !done.has(m.version));
}

/** Names of migrations not applied yet (empty when up to date). */
export async function pendingMigrations(client: ClickHouseClient, database: string): Promise<string[]> {
  return (await unappliedMigrations(client, database)).map((m) => m.name);
}
