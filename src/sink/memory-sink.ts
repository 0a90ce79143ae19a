/**
 * A `RunsStore` in memory, keeping the contract of runs-sink.ts the way the runs table does:
 * one row per sort key (the table's ORDER BY), the highest `_version` winning and a tie going to
 * the later write, read back "FINAL" (deleted rows hidden). For unit tests of the replication core
 * (no Postgres, no ClickHouse) and for benchmarks that leave ClickHouse out.
 *
 * Rows go through the same TabSeparated encoding as an insert, so what is read back has the types
 * ClickHouse would return for that line. Tests can hold writes (`hold`) or make them fail
 * (`failWith`) to see what the caller does while the store is slow or refusing.
 */

import { rankedVersion } from '../schema/version.ts';
import { type ClickHouseRow, tombstoneOf } from '../transform/row.ts';
import { countWrite, decodeRow, type EncodedRow, emptySinkStats, encodeRow, type RunsStore, type SinkStats } from './runs-sink.ts';

/** The runs table's ORDER BY: rows with the same key are one run under FINAL. */
const SORT_KEY = ['organization_id', 'project_id', 'environment_id', 'created_at', 'run_id'] as const;

const keyOf = (row: ClickHouseRow): string => SORT_KEY.map((column) => String(row[column])).join('\u0000');
const versionOf = (row: ClickHouseRow): bigint => BigInt(String(row._version));

export class MemorySink implements RunsStore {
  readonly stats: SinkStats = emptySinkStats();
  /** Rows per resolved write call, in order: what a test checks batches against. */
  readonly writes: number[] = [];
  private readonly rows = new Map<string, ClickHouseRow>();
  private gate: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(readonly qualifiedName = 'memory.task_runs_v2') {}

  /** Writes wait (not yet durable, so unresolved) until the returned function is called. */
  hold(): () => void {
    let release = () => {};
    this.gate = new Promise<void>((resolve) => {
      release = () => {
        this.gate = undefined;
        resolve();
      };
    });
    return release;
  }

  /** Every write from now on rejects with `error` (undefined: writes succeed again). */
  failWith(error: Error | undefined): void {
    this.failure = error;
  }

  write(rows: readonly ClickHouseRow[]): Promise<void> {
    return this.writeEncoded(rows.map(encodeRow));
  }

  async writeEncoded(rows: readonly EncodedRow[]): Promise<void> {
    while (this.gate) await this.gate;
    if (this.failure) throw this.failure;
    for (const encoded of rows) this.put(decodeRow(encoded));
    countWrite(this.stats, rows);
    this.writes.push(rows.length);
  }

  async tombstoneSourceTable(sourceTable: string, version: bigint): Promise<number> {
    // As the runs table does: compared and written at the table's rank (schema/version.ts).
    const older = this.final(sourceTable).filter((row) => versionOf(row) < rankedVersion(sourceTable, version));
    await this.write(older.map((row) => tombstoneOf(row, version)));
    return older.length;
  }

  async schemaMismatches(): Promise<string[]> {
    return [];
  }

  async currentRows(sourceTable: string, runIds: readonly string[]): Promise<Map<string, ClickHouseRow>> {
    const wanted = new Set(runIds);
    return new Map(this.final(sourceTable).flatMap((row) => (wanted.has(String(row.run_id)) ? [[String(row.run_id), row]] : [])));
  }

  /** The live rows, as `SELECT * FROM … FINAL WHERE _is_deleted = 0` returns them. */
  final(sourceTable?: string): ClickHouseRow[] {
    return [...this.rows.values()].filter(
      (row) => Number(row._is_deleted) === 0 && (sourceTable === undefined || row.source_table === sourceTable),
    );
  }

  private put(row: ClickHouseRow): void {
    const key = keyOf(row);
    const held = this.rows.get(key);
    if (!held || versionOf(row) >= versionOf(held)) this.rows.set(key, row);
  }
}
