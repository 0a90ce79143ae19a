/**
 * `runs-cdc verify --repair`: re-copy just the runs verify named, with the backfill's repair rule:
 * read in one exported snapshot, write at the snapshot's version. A run missing or different in
 * ClickHouse gets its row as of the snapshot; a run ClickHouse has but Postgres does not gets a
 * tombstone. Both beat everything committed before the snapshot and lose to anything after it,
 * so running this beside the daemon cannot undo a newer change.
 */
import { randomBytes } from 'node:crypto';
import { withSnapshotCopy } from '../backfill/snapshot-copy.ts';
import type { RunsTable } from '../sink/runs-table.ts';
import { tombstoneOf } from '../transform/row.ts';
import type { Difference } from './verify.ts';

const IDS_PER_ROUND = 1_000;

export interface RepairResult {
  copied: number;
  tombstoned: number;
  version: bigint;
}

export async function repairDifferences(
  databaseUrl: string,
  runsTable: RunsTable,
  differences: readonly Difference[],
): Promise<RepairResult> {
  return withSnapshotCopy(databaseUrl, `runs_cdc_verify_${randomBytes(4).toString('hex')}`, async (snapshot) => {
    const result: RepairResult = { copied: 0, tombstoned: 0, version: snapshot.version };
    for (const table of new Set(differences.map((d) => d.table))) {
      const ofTable = differences.filter((d) => d.table === table);
      const copy = ofTable.filter((d) => d.kind !== 'extra').map((d) => d.runId);
      const remove = ofTable.filter((d) => d.kind === 'extra').map((d) => d.runId);
      for (let i = 0; i < copy.length; i += IDS_PER_ROUND) {
        // Coerced values are logged with the table's logger, as the backfill and the daemon do.
        const rows = await snapshot.rowsOf(table, copy.slice(i, i + IDS_PER_ROUND), runsTable.retryContext.log);
        await runsTable.write(rows);
        result.copied += rows.length;
      }
      for (let i = 0; i < remove.length; i += IDS_PER_ROUND) {
        const current = await runsTable.currentRows(table, remove.slice(i, i + IDS_PER_ROUND));
        await runsTable.write([...current.values()].map((row) => tombstoneOf(row, snapshot.version)));
        result.tombstoned += current.size;
      }
    }
    return result;
  });
}
