/**
 * Numbered ClickHouse migrations from `clickhouse/NNN_name.sql`, applied in order and recorded in a
 * ledger table so `runs-cdc migrate` is idempotent. `{{database}}` in a file is the target database.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { firstLine, RunsCdcError } from '../errors.ts';
import { assertIdentifier } from '../schema/tables.ts';
import { clusterStatements, createDatabaseStatement } from './cluster.ts';
import { readRows } from './read.ts';

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
  const [{ n } = { n: '0' }] = await readRows<{ n: string }>(client, {
    query: 'SELECT count() AS n FROM system.tables WHERE database = {db:String} AND name = {table:String}',
    query_params: { db: database, table: LEDGER_TABLE },
  });
  if (Number(n) === 0) return new Set();
  const rows = await readRows<{ version: number }>(client, { query: `SELECT version FROM ${database}.${LEDGER_TABLE}` });
  return new Set(rows.map((r) => Number(r.version)));
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

/** A migration statement ClickHouse did not complete; the migration is not recorded. */
export class MigrationError extends RunsCdcError {
  override name = 'MigrationError';
}

/** The oldest server runs-cdc's tables work on: ReplacingMergeTree's is_deleted argument came in 23.2. */
export const MIN_SERVER_VERSION = '23.2';
/** The oldest runs-cdc is supported on (and @clickhouse/client's own floor): 24.8 LTS. */
export const SUPPORTED_SERVER_VERSION = '24.8';

function versionAtLeast(version: string, minimum: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map((n) => Number.parseInt(n, 10));
  const [wantMajor = 0, wantMinor = 0] = minimum.split('.').map(Number);
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

/**
 * The server's version, refused with a sentence below MIN_SERVER_VERSION. `supported` is false
 * between that floor and SUPPORTED_SERVER_VERSION (it works, but nothing tests it there).
 */
export async function checkServerVersion(client: ClickHouseClient): Promise<{ version: string; supported: boolean }> {
  const [{ version } = { version: '0' }] = await readRows<{ version: string }>(client, { query: 'SELECT version() AS version' });
  if (!versionAtLeast(version, MIN_SERVER_VERSION)) {
    throw new MigrationError(
      `ClickHouse ${version} is older than ${MIN_SERVER_VERSION}, the first with ReplacingMergeTree's is_deleted that runs-cdc's tables need: upgrade the server (${SUPPORTED_SERVER_VERSION} LTS or later is supported)`,
    );
  }
  return { version, supported: versionAtLeast(version, SUPPORTED_SERVER_VERSION) };
}

/** DDL waits for its end before answering (a failure then comes as an HTTP error, not in a 200
 * body), ON CLUSTER raises a failure on any host, and within the client's request timeout (see
 * timeoutSettings, which sets distributed_ddl_task_timeout below it). */
const DDL_SETTINGS: ClickHouseSettings = { wait_end_of_query: 1, distributed_ddl_output_mode: 'throw' };

/** An exception ClickHouse wrote into a response body after it had answered 200 (ON CLUSTER DDL
 * streams one row per host, then the exception when a host failed). */
const BODY_EXCEPTION = /(?:Code|Error): (\d+)\. DB::Exception: ([^\n]*)/;

/** Run one DDL statement and read its whole answer; any exception in it rejects. */
export async function runDdl(client: ClickHouseClient, statement: string, settings: ClickHouseSettings = {}): Promise<void> {
  const result = await client.exec({ query: statement, clickhouse_settings: { ...DDL_SETTINGS, ...settings } });
  let body = '';
  for await (const chunk of result.stream) body += String(chunk);
  const exception = BODY_EXCEPTION.exec(body);
  if (exception) throw new Error(`Code: ${exception[1]}. DB::Exception: ${exception[2]}`);
}

async function runStep(client: ClickHouseClient, step: string, statement: string): Promise<void> {
  try {
    await runDdl(client, statement);
  } catch (error) {
    throw new MigrationError(
      `ClickHouse did not complete ${step} (${firstLine(error)}); it is not recorded as applied: fix the cause and run runs-cdc migrate again (each statement is IF NOT EXISTS)`,
    );
  }
}

/** Apply what is not applied yet, after checking the server's version. Returns the names of the
 * migrations applied now. A migration is recorded only once every statement of it completed. */
export async function migrate(client: ClickHouseClient, database: string, cluster?: string): Promise<string[]> {
  assertIdentifier(database, 'ClickHouse database');
  await checkServerVersion(client);
  for (const statement of migrationStatements(database, [], cluster)) await runStep(client, 'creating the database and ledger', statement);
  const applied: string[] = [];
  for (const migration of await unappliedMigrations(client, database)) {
    for (const statement of migration.statements.flatMap((s) => forTarget(s, database, cluster))) {
      await runStep(client, `migration ${migration.name}`, statement);
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
