/**
 * pgoutput changes -> ClickHouse rows. Pure functions: the replication daemon and the backfill
 * both build rows here, so there is one mapping and one set of rules.
 */

import { nullTemplate } from '../objects.ts';
import {
  DELETED_COLUMN,
  SORT_KEY_SOURCE_COLUMNS,
  SOURCE_COLUMNS,
  SOURCE_TABLE_COLUMN,
  type SourceTable,
  TARGET_COLUMNS,
  VERSION_COLUMN,
} from '../schema/columns.ts';
import { LEGACY_SUPERSEDED_VERSION, rankedVersion } from '../schema/version.ts';
import { type ClickHouseValue, type Coercion, convertValue, emptyValue } from './values.ts';

/**
 * A row as pgoutput decoded it, with every value kept as Postgres text. `null` is SQL NULL;
 * `undefined` (or an absent column) is a value the change did not carry: an unchanged TOASTed
 * column with no old tuple to take it from.
 */
export type Tuple = Readonly<Record<string, string | null | undefined>>;

export type ClickHouseRow = Record<string, ClickHouseValue>;

export type Change =
  | { kind: 'insert'; new: Tuple }
  | { kind: 'update'; old: Tuple | null; new: Tuple }
  | { kind: 'delete'; old: Tuple | null; key: Tuple | null };

export interface TransformResult {
  /** Rows to insert, in order: a tombstone for a moved row's old sort key comes first. */
  rows: ClickHouseRow[];
  coercions: Coercion[];
  /** Source columns the change did not carry (unchanged TOAST without FULL identity). The caller
   * must fill them from ClickHouse's current row; writing NULL or '' would destroy the value. */
  missingColumns: string[];
  /** A delete that carried only the primary key (no FULL identity): its sort key is unknown. */
  keyOnlyDelete?: { id: string };
}

/** Every built row starts as a copy of this one: one fast V8 shape for all rows (objects.ts). Rows
 * then take less heap, and the GC and the insert encoding run faster (bench/run.ts throughput). */
const EMPTY_ROW = nullTemplate<ClickHouseValue>(TARGET_COLUMNS.map((c) => c.name));

/** Build one ClickHouse row from a full tuple. `version` is the change's (or the backfill's)
 * version; the row carries it ranked by its table (see version.ts). */
export function buildRow(
  tuple: Tuple,
  sourceTable: SourceTable,
  version: bigint,
  deleted: boolean,
  coercions: Coercion[] = [],
  missingColumns: string[] = [],
): ClickHouseRow {
  const row: ClickHouseRow = { ...EMPTY_ROW };
  for (const column of SOURCE_COLUMNS) {
    const text = tuple[column.source];
    if (text === undefined) {
      missingColumns.push(column.source);
      row[column.target] = null;
      continue;
    }
    // Most values are text or NULL and need no conversion; skipping the call spares an object per value.
    if (text === null) {
      row[column.target] = emptyValue(column.kind, column.nullable);
      continue;
    }
    if (column.kind === 'text' || column.kind === 'json') {
      row[column.target] = text;
      continue;
    }
    const { value, coercion } = convertValue(column.kind, column.nullable, text);
    if (coercion) coercions.push({ column: column.source, value: String(text).slice(0, 200), reason: coercion });
    row[column.target] = value;
  }
  row[SOURCE_TABLE_COLUMN] = sourceTable;
  row[VERSION_COLUMN] = rankedVersion(sourceTable, version).toString(); // UInt128 travels as its decimal digits
  row[DELETED_COLUMN] = deleted ? 1 : 0;
  return row;
}

/** A tombstone for a row as ClickHouse holds it: same sort key, newer version (ranked by the
 * row's table), deleted. */
export function tombstoneOf(row: ClickHouseRow, version: bigint): ClickHouseRow {
  return { ...row, [VERSION_COLUMN]: rankedVersion(String(row[SOURCE_TABLE_COLUMN]), version).toString(), [DELETED_COLUMN]: 1 };
}

/** What a live "TaskRun" row becomes when its run has a task_run_v2 copy: a tombstone on its key
 * at LEGACY_SUPERSEDED_VERSION, above every legacy version and below every v2 one, so no legacy
 * row on that key shows again and the v2 copy, wherever it is, stays the run. */
export function supersededLegacyTombstone(row: ClickHouseRow): ClickHouseRow {
  return { ...row, [VERSION_COLUMN]: LEGACY_SUPERSEDED_VERSION.toString(), [DELETED_COLUMN]: 1 };
}

/** Fill columns an update did not carry from the old tuple (FULL identity sends the old row). */
function withUnchangedFromOld(next: Tuple, old: Tuple | null): Tuple {
  if (!old) return next;
  const merged: Record<string, string | null | undefined> = { ...next };
  for (const column of SOURCE_COLUMNS) {
    if (merged[column.source] === undefined && old[column.source] !== undefined) merged[column.source] = old[column.source];
  }
  return merged;
}

export function sortKeyChanged(old: Tuple, next: Tuple): boolean {
  return SORT_KEY_SOURCE_COLUMNS.some((c) => old[c] !== undefined && next[c] !== undefined && old[c] !== next[c]);
}

/** Rows for one change. All rows of one change share its version. */
export function transformChange(change: Change, sourceTable: SourceTable, version: bigint): TransformResult {
  const coercions: Coercion[] = [];
  const missingColumns: string[] = [];
  const rows: ClickHouseRow[] = [];
  switch (change.kind) {
    case 'insert':
      rows.push(buildRow(change.new, sourceTable, version, false, coercions, missingColumns));
      break;
    case 'update': {
      const next = withUnchangedFromOld(change.new, change.old);
      // The sort key moved: ReplacingMergeTree dedups per key, so the old key needs a tombstone.
      if (change.old && sortKeyChanged(change.old, next)) rows.push(buildRow(change.old, sourceTable, version, true, coercions));
      rows.push(buildRow(next, sourceTable, version, false, coercions, missingColumns));
      break;
    }
    case 'delete':
      if (change.old) {
        // The tombstone carries the whole old row so it lands on the same sort key.
        rows.push(buildRow(change.old, sourceTable, version, true, coercions));
      } else {
        const id = change.key?.id;
        return { rows, coercions, missingColumns, keyOnlyDelete: { id: id ?? '' } };
      }
      break;
  }
  return { rows, coercions, missingColumns };
}
