/**
 * The backfill's public entry for copying chosen runs with the repair version rule (see
 * version-rule.ts): rows read in one snapshot exported by a temporary slot, transformed as the
 * backfill transforms them, at the snapshot's version. verify --repair uses it.
 */
import type { Logger } from '../logger.ts';
import type { SourceTable } from '../schema/columns.ts';
import type { ClickHouseRow } from '../transform/row.ts';
import { connectReader, readPageByIds, rowsOfPage } from './source.ts';
import { exportSnapshot, importSnapshot } from './version-rule.ts';

export interface SnapshotCopy {
  /** The version every row read here gets: above every change before the snapshot, below every one after. */
  readonly version: bigint;
  /** The rows of the given runs as of the snapshot (runs the snapshot lacks are left out). */
  rowsOf(table: SourceTable, ids: readonly string[], log: Logger): Promise<ClickHouseRow[]>;
}

/** Run `use` with reads in one exported snapshot; the snapshot and its slot are gone afterwards. */
export async function withSnapshotCopy<T>(databaseUrl: string, slotName: string, use: (copy: SnapshotCopy) => Promise<T>): Promise<T> {
  const snapshot = await exportSnapshot(databaseUrl, slotName);
  const reader = await connectReader(databaseUrl);
  try {
    await importSnapshot(reader, snapshot.name);
    await snapshot.close();
    const result = await use({
      version: snapshot.version,
      rowsOf: async (table, ids, log) => rowsOfPage(await readPageByIds(reader, table, ids), table, snapshot.version, log),
    });
    await reader.query('COMMIT');
    return result;
  } finally {
    await snapshot.close().catch(() => {});
    await reader.end();
  }
}
