/**
 * The repair after a slot was recreated (replicate --recreate-slot, see replication/slot-guard.ts):
 * every change committed while no slot existed must reach ClickHouse. A repair backfill of both
 * tables reads every run in one snapshot exported after the new slot exists and writes it at the
 * snapshot's version V (version-rule.ts): it beats every change before the snapshot (what CDC
 * wrote before the slot was lost, or missed) and loses to every change after it (which the new
 * slot delivers). Then every live row still below V is one the snapshot does not hold (deleted,
 * or moved to another sort key, while no slot existed): it gets a tombstone at V, exactly as a
 * TRUNCATE at the snapshot would (tombstoneSourceTable), so rows CDC writes later stay.
 */
import { RunsCdcError } from '../errors.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';
import type { RunsSink } from '../sink/runs-sink.ts';
import { withPostgres } from '../source/connection.ts';
import { backfillRequest, runBackfill } from './job.ts';
import type { BackfillContext } from './run.ts';

export interface GapRepairResult {
  jobId: string;
  rowsCopied: number;
  rowsTombstoned: number;
}

/** Copy every run in one snapshot at its version, then tombstone what the snapshot lacks, in every target. */
export async function repairGap(
  context: BackfillContext,
  targets: ReadonlyArray<Pick<RunsSink, 'tombstoneSourceTable'>>,
): Promise<GapRepairResult> {
  // Every run, whatever --max-rows the environment sets: a run left out would be tombstoned below.
  const whole = { ...context, tuning: { ...context.tuning, maxRows: 0 } };
  const result = await withPostgres(context.databaseUrl, (sql) => runBackfill(sql, backfillRequest({ mode: 'repair' }), whole), {
    application_name: 'runs-cdc gap repair',
  });
  if (result.status === 'FAILURE') {
    throw new RunsCdcError(
      `the repair of the gap after the slot was recreated failed (${result.message}); restart runs-cdc replicate to repeat it`,
    );
  }
  let rowsTombstoned = 0;
  for (const table of SOURCE_TABLES) {
    for (const target of targets) rowsTombstoned += await target.tombstoneSourceTable(table, result.version, context.signal);
  }
  return { jobId: result.jobId, rowsCopied: result.rowsCopied, rowsTombstoned };
}
