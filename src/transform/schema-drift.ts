/**
 * Checks a table's columns as pgoutput announces them (a Relation message precedes the first
 * change of a table and follows any ALTER) against the column mapping. Pure.
 *
 * A column the mapping does not know is harmless: it is not replicated (logged once). A mapped
 * column that is gone, or whose type no longer converts to its ClickHouse type, is not: the
 * daemon stops there, so nothing after it is acknowledged and no value is silently lost.
 *
 * Undoing the change is not enough to go on: the slot replays the WAL written between the change
 * and its undoing, and pgoutput describes that WAL with the changed columns, so every restart
 * stops at the same place. The way forward (RECOVERY) starts a new slot once the table is right
 * again with replicate --recreate-slot, whose repair copies every run at a snapshot version (newer
 * than what the old slot wrote, older than what the new slot streams) and tombstones what the
 * snapshot lacks (replication/slot-guard.ts).
 */
import { type ColumnKind, SOURCE_COLUMNS } from '../schema/columns.ts';
import { quoteIdent } from '../source/catalog.ts';

export interface AnnouncedColumn {
  name: string;
  typeOid: number;
}

export interface DriftReport {
  unmapped: string[];
  /** Sentences describing each incompatibility; empty when the table can be replicated. */
  incompatible: string[];
}

// Postgres type OIDs (pg_type.oid, stable across versions).
const INT2 = 21;
const INT4 = 23;
const FLOAT4 = 700;
const FLOAT8 = 701;
const NUMERIC = 1700;
const INT8 = 20;
const BOOL = 16;
const TIMESTAMP = 1114;
const JSON_OID = 114;
const JSONB = 3802;
const TEXT = 25;
const VARCHAR = 1043;
const TEXT_ARRAY = 1009;
const VARCHAR_ARRAY = 1015;

/** Types whose text each kind's conversion reads. `text` takes anything: every type prints. */
const ACCEPTED: Record<Exclude<ColumnKind, 'text'>, readonly number[]> = {
  int: [INT2, INT4],
  float: [FLOAT4, FLOAT8, NUMERIC, INT2, INT4, INT8],
  bool: [BOOL],
  timestamp: [TIMESTAMP],
  json: [JSON_OID, JSONB, TEXT, VARCHAR],
  textArray: [TEXT_ARRAY, VARCHAR_ARRAY],
};

/** What to do once the table has its mapped columns back. */
const RECOVERY =
  "then start over from a new slot: SELECT pg_drop_replication_slot('<--slot, runs_cdc by default>'); then runs-cdc replicate --recreate-slot (it creates the slot and repairs what changed meanwhile; restoring the column alone does not help: the slot replays the changes made without it)";

export function checkRelation(table: string, columns: readonly AnnouncedColumn[]): DriftReport {
  const byName = new Map(columns.map((c) => [c.name, c]));
  const mapped = new Set(SOURCE_COLUMNS.map((c) => c.source));
  const unmapped = columns.map((c) => c.name).filter((name) => !mapped.has(name));
  const incompatible: string[] = [];
  for (const column of SOURCE_COLUMNS) {
    const announced = byName.get(column.source);
    if (!announced) {
      incompatible.push(
        `column "${column.source}" of ${table} (ClickHouse ${column.target}) is gone from Postgres: restore it (ALTER TABLE ${quoteIdent(table)} ADD COLUMN "${column.source}" ..., or change the column mapping and the ClickHouse table), ${RECOVERY}`,
      );
      continue;
    }
    if (column.kind === 'text') continue;
    if (!ACCEPTED[column.kind].includes(announced.typeOid)) {
      incompatible.push(
        `column "${column.source}" of ${table} now has type oid ${announced.typeOid}, which does not convert to ClickHouse ${column.target} (${column.kind}): change it back (or change the mapping and the ClickHouse table), ${RECOVERY}`,
      );
    }
  }
  return { unmapped, incompatible };
}
