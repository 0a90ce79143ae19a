/**
 * Postgres preflight for `runs-cdc replicate`: everything logical replication of the runs tables
 * needs, checked before streaming. Each failure is one sentence saying what is wrong and what
 * command fixes it.
 */
import type pg from 'pg';
import { PreflightError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { SOURCE_TABLES, type SourceTable } from '../schema/columns.ts';
import {
  IDENTITY_NAMES,
  type PublicationState,
  quoteIdent,
  readPublication,
  readReplicaIdentities,
  readSlot,
  type SlotState,
} from './catalog.ts';

export interface PreflightOptions {
  publication: string;
  slot: string;
  fixReplicaIdentity: boolean;
  allowPartialIdentity: boolean;
}

export interface PreflightResult {
  /** Tables without REPLICA IDENTITY FULL (only with allowPartialIdentity). */
  partialIdentityTables: SourceTable[];
  createdPublication: boolean;
  createdSlot: boolean;
}

export async function checkWalLevel(sql: pg.ClientBase): Promise<void> {
  const { rows } = await sql.query<{ wal_level: string }>('SHOW wal_level');
  const level = rows[0]?.wal_level;
  if (level !== 'logical') {
    throw new PreflightError(
      `Postgres has wal_level=${level}, but logical replication needs wal_level=logical: run ALTER SYSTEM SET wal_level = logical; and restart Postgres`,
    );
  }
}

export function missingTableProblem(table: SourceTable): string {
  return `table ${quoteIdent(table)} does not exist in this database: create it (psql -f sql/001_runs_tables.sql) or point DATABASE_URL at the platform's database`;
}

/** Why a table's replica identity (`relreplident`) is not enough, or undefined when it is FULL. */
export function identityProblem(table: SourceTable, identity: string): string | undefined {
  if (identity === 'f') return undefined;
  return `table ${quoteIdent(table)} has REPLICA IDENTITY ${IDENTITY_NAMES[identity] ?? identity}, but runs-cdc needs FULL so deletes and updates carry the whole old row (replication without it is DEGRADED: values are looked up in ClickHouse): run ALTER TABLE ${quoteIdent(table)} REPLICA IDENTITY FULL; or start with --fix-replica-identity`;
}

/** Replica identity of each runs table, failing when a table does not exist. */
export async function replicaIdentities(sql: pg.ClientBase): Promise<Map<SourceTable, string>> {
  const identities = new Map<SourceTable, string>();
  for (const [table, identity] of await readReplicaIdentities(sql)) {
    if (!identity) throw new PreflightError(missingTableProblem(table));
    identities.set(table, identity);
  }
  return identities;
}

async function ensureReplicaIdentity(sql: pg.ClientBase, options: PreflightOptions, log: Logger): Promise<SourceTable[]> {
  const partial: SourceTable[] = [];
  for (const [table, identity] of await replicaIdentities(sql)) {
    const problem = identityProblem(table, identity);
    if (!problem) continue;
    const alter = `ALTER TABLE ${quoteIdent(table)} REPLICA IDENTITY FULL`;
    if (options.fixReplicaIdentity) {
      await sql.query(alter);
      log.info({ table }, `set REPLICA IDENTITY FULL on ${table}`);
    } else if (options.allowPartialIdentity) {
      partial.push(table);
      log.warn(
        { table, identity: IDENTITY_NAMES[identity] },
        `DEGRADED: ${table} has REPLICA IDENTITY ${IDENTITY_NAMES[identity]}, not FULL: deletes carry only the id and unchanged TOASTed values must be looked up in ClickHouse; run ${alter}`,
      );
    } else {
      throw new PreflightError(problem);
    }
  }
  return partial;
}

export async function ensurePublication(sql: pg.ClientBase, publication: string, log: Logger): Promise<boolean> {
  const tableList = SOURCE_TABLES.map(quoteIdent).join(', ');
  const pub = await readPublication(sql, publication);
  if (!pub) {
    await sql.query(`CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${tableList}`);
    log.info({ publication }, `created publication ${publication} for ${tableList}`);
    return true;
  }
  const [problem] = publicationProblems(pub, publication);
  if (problem) throw new PreflightError(problem);
  return false;
}

/** What keeps a publication from carrying every change runs-cdc needs; empty when nothing does. */
export function publicationProblems(pub: PublicationState, publication: string): string[] {
  const problems: string[] = [];
  const missingActions = (['insert', 'update', 'delete', 'truncate'] as const).filter((a) => !pub.actions[a]);
  if (missingActions.length > 0) {
    problems.push(
      `publication ${publication} does not publish ${missingActions.join(', ')}: run ALTER PUBLICATION ${quoteIdent(publication)} SET (publish = 'insert, update, delete, truncate');`,
    );
  }
  const missing = SOURCE_TABLES.filter((t) => !pub.tables.has(t));
  if (missing.length > 0) {
    problems.push(
      `publication ${publication} does not cover ${missing.map(quoteIdent).join(', ')}: run ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${missing.map(quoteIdent).join(', ')};`,
    );
  }
  return problems;
}

/** A slot runs-cdc can stream from, or from whose creation on a backfill is safe: a pgoutput
 * slot of this database, not invalidated. Throws the sentence that says what to do. */
export async function assertUsableSlot(sql: pg.ClientBase, state: SlotState, slot: string): Promise<void> {
  const [problem] = await slotProblems(sql, state, slot);
  if (problem) throw new PreflightError(problem);
}

/** Why runs-cdc cannot use a slot, each as the sentence that says what to do; empty when it can. */
export async function slotProblems(sql: pg.ClientBase, state: SlotState, slot: string): Promise<string[]> {
  const { rows } = await sql.query<{ db: string }>('SELECT current_database() AS db');
  const database = rows[0]?.db;
  const problems: string[] = [];
  if (state.plugin !== 'pgoutput' || state.database !== database) {
    problems.push(
      `replication slot ${slot} belongs to database ${state.database ?? 'none'} with plugin ${state.plugin}, but runs-cdc needs a pgoutput slot in ${database}: pass the --slot runs-cdc replicate uses for this database, or drop it with SELECT pg_drop_replication_slot('${slot}');`,
    );
  }
  if (state.walStatus === 'lost') {
    problems.push(
      `replication slot ${slot} is invalidated (wal_status=lost): WAL it needed was removed, so ClickHouse may be missing changes: restart with runs-cdc replicate --recreate-slot (drops it, creates it again and repairs the gap in ClickHouse as runs-cdc backfill --mode repair does)`,
    );
  }
  return problems;
}

export async function ensureSlot(sql: pg.ClientBase, slot: string, log: Logger): Promise<boolean> {
  const state = await readSlot(sql, slot);
  if (!state) {
    // Its own statement: slot creation fails in a transaction that has written anything.
    await sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    log.info({ slot }, `created logical replication slot ${slot} (pgoutput)`);
    return true;
  }
  await assertUsableSlot(sql, state, slot);
  return false;
}

/** Checks (and, where it is safe, creates) everything replication needs on the Postgres side. */
export async function preflightPostgres(sql: pg.ClientBase, options: PreflightOptions, log: Logger): Promise<PreflightResult> {
  await checkWalLevel(sql);
  const partialIdentityTables = await ensureReplicaIdentity(sql, options, log);
  // The publication before the slot: pgoutput looks the publication up as of each change's WAL
  // position, so a slot older than its publication fails on the first change.
  const createdPublication = await ensurePublication(sql, options.publication, log);
  const createdSlot = await ensureSlot(sql, options.slot, log);
  return { partialIdentityTables, createdPublication, createdSlot };
}
