/**
 * The one boundary between runs-cdc and where runs are stored: what replication and the backfill
 * write through, and what replication reads back. `RunsTable` (ClickHouse) and `MemorySink`
 * (tests, benchmarks without ClickHouse) implement it.
 *
 * The contract every implementation keeps, and all that callers may assume:
 *
 * - **Durable on resolve.** When `write` (or `writeEncoded`, `tombstoneSourceTable`) resolves,
 *   every row it was given is stored durably: it survives a crash of this process (ClickHouse:
 *   a synchronous insert, never `async_insert`, `insert_distributed_sync` on clusters). Accepted
 *   but not yet durable does not count. Rows the store refuses for their content may be kept as
 *   dead letters instead; that is still "resolved". A rejection means nothing of that call may be
 *   treated as written (some rows may have landed; replay makes that harmless).
 * - **Ordering.** Rows of one call are stored as one set; calls are not reordered against each
 *   other *by the caller*, who awaits one before confirming anything after it. The sink itself
 *   need not keep order: the newest state wins by `_version`, never by arrival.
 * - **Idempotent under replay.** Delivery is at-least-once: after a crash, reconnect or resume the
 *   same change is written again with the same `_version`. The store keeps one row per sort key
 *   (organization, project, environment, created_at, run_id; both source tables share it): the
 *   highest `_version`, hidden when `_is_deleted = 1` (ReplacingMergeTree(_version, _is_deleted)
 *   read with FINAL). Writing a row twice is one row. The runs table also applies the two-table
 *   rule (schema/version.ts: a live legacy row of a migrated run is written as a tombstone);
 *   MemorySink does not, so that rule is tested against the real table.
 * - **Retries are the sink's.** Transient failures are retried inside the call (without limit
 *   unless the sink's policy sets one); a rejection is final for that call (`SinkFatalError`).
 *
 * What callers build on it: replication confirms an LSN to Postgres only after every `write`
 * holding a change before it resolved (see DurableBuffer); the backfill checkpoints a page only
 * after its `write` resolved.
 */

import { TARGET_COLUMNS } from '../schema/columns.ts';
import type { ClickHouseRow } from '../transform/row.ts';
import { insertChunks, sharedLines } from './line-slab.ts';
import { decodeTabSeparatedLine, encodeTabSeparatedLine } from './tab-separated.ts';

/**
 * A row as the insert carries it: its TabSeparated line, and what the sink's stats need. The
 * daemon buffers rows encoded: one line of UTF-8 bytes per row, outside the JS heap (line-slab.ts),
 * instead of a row object and its values that the garbage collector would copy.
 */
export interface EncodedRow {
  /** The line's UTF-8 bytes, without its line feed. */
  readonly line: Buffer;
  readonly sourceTable: string;
  readonly deleted: boolean;
  readonly runId: string;
}

export function encodeRow(row: ClickHouseRow): EncodedRow {
  return {
    line: sharedLines.text(encodeTabSeparatedLine(row, TARGET_COLUMNS)),
    sourceTable: String(row.source_table),
    deleted: Number(row._is_deleted) === 1,
    runId: String(row.run_id),
  };
}

export function decodeRow(encoded: EncodedRow): ClickHouseRow {
  return decodeTabSeparatedLine(encoded.line.toString('utf8'), TARGET_COLUMNS);
}

/** The body of one TabSeparated insert of `rows`, in pieces: what RunsTable sends (and DiscardingSink builds). */
export function insertBody(rows: readonly EncodedRow[]): Buffer[] {
  return insertChunks(rows.map((row) => row.line));
}

export interface SinkStats {
  rowsWritten: number;
  /** Rows refused by the store and kept in dead_letters. */
  deadLetters: number;
  /** Rows written per `source_table/live|tombstone`. */
  rowsByTable: Record<string, number>;
  inserts: number;
  retries: number;
  retriesByReason: Record<string, number>;
}

export function emptySinkStats(): SinkStats {
  return { rowsWritten: 0, deadLetters: 0, rowsByTable: {}, inserts: 0, retries: 0, retriesByReason: {} };
}

/** The stats keys of each source table's live rows and tombstones, made once per table rather than per row. */
const ROWS_BY_TABLE_KEYS = new Map<string, { live: string; tombstone: string }>();
function rowsByTableKeys(table: string): { live: string; tombstone: string } {
  let keys = ROWS_BY_TABLE_KEYS.get(table);
  if (!keys) {
    keys = { live: `${table}/live`, tombstone: `${table}/tombstone` };
    ROWS_BY_TABLE_KEYS.set(table, keys);
  }
  return keys;
}

/** Count one insert of `rows` into `stats` (every sink counts writes the same way). */
export function countWrite(stats: SinkStats, rows: readonly EncodedRow[]): void {
  stats.rowsWritten += rows.length;
  stats.inserts += 1;
  for (const row of rows) {
    const keys = rowsByTableKeys(row.sourceTable);
    const key = row.deleted ? keys.tombstone : keys.live;
    stats.rowsByTable[key] = (stats.rowsByTable[key] ?? 0) + 1;
  }
}

/** Where runs are written. Every method keeps the contract above. */
export interface RunsSink {
  /** For messages: e.g. the qualified ClickHouse table name. */
  readonly qualifiedName: string;
  readonly stats: SinkStats;
  /** Durable when it resolves (see the contract). */
  write(rows: readonly ClickHouseRow[], signal?: AbortSignal): Promise<void>;
  /** `write` for rows already encoded (the daemon buffers them encoded). */
  writeEncoded(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<void>;
  /**
   * Replicate a TRUNCATE: a tombstone at `version` for every live row of `sourceTable` with a
   * lower version; rows with higher versions stay, and replaying it is harmless. Returns the rows
   * tombstoned.
   */
  tombstoneSourceTable(sourceTable: string, version: bigint, signal?: AbortSignal): Promise<number>;
}

/** What replication reads back from where runs are stored. */
export interface RunsReader {
  /** Mismatches between the stored table and the column mapping (empty when they agree). */
  schemaMismatches(): Promise<string[]>;
  /** The current (deduplicated, not deleted) rows of the given runs, by run id. */
  currentRows(sourceTable: string, runIds: readonly string[]): Promise<Map<string, ClickHouseRow>>;
}

/** A place runs are written to and read back from: one target of replication. */
export type RunsStore = RunsSink & RunsReader;
