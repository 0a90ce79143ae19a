/**
 * Postgres catalog reads runs-cdc shares (preflight, status, backfill, verify, metrics): replica
 * identities, the publication, the slot, the server's WAL position. Read only; nothing here changes
 * the database or decides what is a problem (preflight.ts does).
 */
import type pg from 'pg';
import { type Lsn, parseLsn } from '../lsn.ts';
import { SOURCE_TABLES, type SourceTable } from '../schema/columns.ts';

export const IDENTITY_NAMES: Record<string, string> = { d: 'DEFAULT', n: 'NOTHING', f: 'FULL', i: 'USING INDEX' };

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Replica identity (pg_class.relreplident) of each runs table; null for a table that is missing. */
export async function readReplicaIdentities(sql: pg.ClientBase): Promise<Map<SourceTable, string | null>> {
  const identities = new Map<SourceTable, string | null>();
  for (const table of SOURCE_TABLES) {
    const { rows } = await sql.query<{ identity: string | null }>(
      'SELECT (SELECT relreplident FROM pg_class WHERE oid = to_regclass($1)) AS identity',
      [quoteIdent(table)],
    );
    identities.set(table, rows[0]?.identity ?? null);
  }
  return identities;
}

export interface PublicationState {
  /** What it publishes: insert, update, delete, truncate. */
  actions: Record<'insert' | 'update' | 'delete' | 'truncate', boolean>;
  /** Tables of the current schema it covers. */
  tables: Set<string>;
}

export async function readPublication(sql: pg.ClientBase, publication: string): Promise<PublicationState | undefined> {
  const { rows } = await sql.query<{ pubupdate: boolean; pubdelete: boolean; pubinsert: boolean; pubtruncate: boolean }>(
    'SELECT pubinsert, pubupdate, pubdelete, pubtruncate FROM pg_publication WHERE pubname = $1',
    [publication],
  );
  const pub = rows[0];
  if (!pub) return undefined;
  const covered = await sql.query<{ tablename: string }>(
    'SELECT tablename FROM pg_publication_tables WHERE pubname = $1 AND schemaname = current_schema()',
    [publication],
  );
  return {
    actions: { insert: pub.pubinsert, update: pub.pubupdate, delete: pub.pubdelete, truncate: pub.pubtruncate },
    tables: new Set(covered.rows.map((r) => r.tablename)),
  };
}

export interface SlotState {
  plugin: string;
  database: string;
  active: boolean;
  activePid: number | null;
  walStatus: string | null;
  confirmedFlushLsn: string | null;
}

export async function readSlot(sql: pg.ClientBase, slot: string): Promise<SlotState | undefined> {
  const { rows } = await sql.query<{
    plugin: string;
    database: string;
    active: boolean;
    active_pid: number | null;
    wal_status: string | null;
    confirmed_flush_lsn: string | null;
  }>(
    `SELECT plugin, database, active, active_pid, wal_status, confirmed_flush_lsn::text
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    plugin: row.plugin,
    database: row.database,
    active: row.active,
    activePid: row.active_pid,
    walStatus: row.wal_status,
    confirmedFlushLsn: row.confirmed_flush_lsn,
  };
}

/** The server's current WAL write position: every transaction committed so far ends before it. */
export async function currentWalLsn(sql: pg.ClientBase | pg.Pool): Promise<Lsn> {
  const { rows } = await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn((rows[0] as { lsn: string }).lsn);
}
