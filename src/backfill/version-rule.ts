/**
 * The version rule: a backfilled row never overwrites a newer change CDC wrote, and CDC always
 * overwrites a backfilled row. Versions come from WAL positions, never from a clock.
 *
 * Default mode: the replication slot must exist before the backfill reads, and backfilled rows
 * get version 0, below every replicated change. Why the newest state wins: a change committed
 * after the slot was created is decoded from the slot and reaches ClickHouse through CDC with a
 * higher version, whenever the backfill copies its row; a change committed before the slot was
 * created is visible to every page the backfill reads afterwards, so the copy carries it (or a
 * later state that CDC also delivers). The one thing version 0 cannot do is fix a row CDC already
 * wrote wrongly or missed while a slot was lost: that is repair mode.
 *
 * Repair mode: read every page in one snapshot exported by a temporary logical slot, and give the
 * rows snapshotVersion(consistent point): higher than every change committed before the point
 * (which the snapshot contains), lower than every change committed after it (which CDC delivers).
 */
import type pg from 'pg';
import { PreflightError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Lsn, parseLsn } from '../lsn.ts';
import { BACKFILL_VERSION, snapshotVersion } from '../schema/version.ts';
import { quoteIdent, readSlot } from '../source/catalog.ts';
import { connectPostgres } from '../source/connection.ts';
import { assertUsableSlot, checkWalLevel, ensurePublication, ensureSlot } from '../source/preflight.ts';

export interface SlotSettings {
  slot: string;
  publication: string;
  /** Create the publication and slot when missing instead of failing. */
  createSlot: boolean;
}

/** Default mode: check (or create) the slot, then the backfill may read; its rows get version 0. */
export async function requireReplicationSlot(sql: pg.ClientBase, settings: SlotSettings, log: Logger): Promise<bigint> {
  const state = await readSlot(sql, settings.slot);
  if (!state && settings.createSlot) {
    await checkWalLevel(sql);
    await ensurePublication(sql, settings.publication, log);
    await ensureSlot(sql, settings.slot, log);
    log.warn(
      { slot: settings.slot },
      `created replication slot ${settings.slot}: start runs-cdc replicate soon, or Postgres keeps WAL for it without limit`,
    );
    return BACKFILL_VERSION;
  }
  if (!state) {
    throw new PreflightError(
      `replication slot ${settings.slot} does not exist, so changes made during the backfill would be lost: start runs-cdc replicate first (it creates the slot), or rerun with --create-slot`,
    );
  }
  await assertUsableSlot(sql, state, settings.slot);
  return BACKFILL_VERSION;
}

export interface ExportedSnapshot {
  /** For `SET TRANSACTION SNAPSHOT` in the reading connections. */
  name: string;
  consistentPoint: Lsn;
  /** The version of every row read in this snapshot. */
  version: bigint;
  /** Drops the temporary slot; call once every reader has imported the snapshot. */
  close(): Promise<void>;
}

/** Repair mode: a temporary logical slot exporting its snapshot. The snapshot stays importable
 * while this connection is open and idle. */
export async function exportSnapshot(databaseUrl: string, slotName: string): Promise<ExportedSnapshot> {
  const replication = await connectPostgres(databaseUrl, { replication: 'database' } as pg.ClientConfig);
  try {
    await checkWalLevel(replication);
    const { rows } = await replication.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${quoteIdent(slotName)} TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    const row = rows[0];
    if (!row?.snapshot_name) throw new PreflightError('Postgres exported no snapshot for the repair backfill');
    const consistentPoint = parseLsn(row.consistent_point);
    return {
      name: row.snapshot_name,
      consistentPoint,
      version: snapshotVersion(consistentPoint),
      close: () => replication.end(),
    };
  } catch (error) {
    await replication.end().catch(() => {});
    throw error;
  }
}

/** Make `reader`'s next statements read in the exported snapshot (until `COMMIT`). */
export async function importSnapshot(reader: pg.ClientBase, snapshot: string): Promise<void> {
  await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await reader.query(`SET TRANSACTION SNAPSHOT '${snapshot.replaceAll("'", "''")}'`);
}
