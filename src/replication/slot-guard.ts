/**
 * No silent gap when the slot changes. A logical slot delivers only what was committed after it
 * was created, so when the slot runs-cdc streamed from is dropped or invalidated, every change
 * made until a new one exists never reaches ClickHouse by CDC. ClickHouse therefore records which
 * slot its rows came from (the `replication_slots` table: slot name, epoch, the LSN its stream
 * began at, and whether a repair of the gap is still pending), and before streaming:
 *
 * - slot usable and recorded, nothing pending: stream as always;
 * - slot usable but not recorded (an upgrade, or a slot made by `backfill --create-slot`): record
 *   it as it is (epoch 1) and stream;
 * - slot missing or invalidated, ClickHouse empty and nothing recorded (the first start): create
 *   it and record it;
 * - slot missing or invalidated while ClickHouse holds rows or a record: refuse with the fix, or
 *   with `--recreate-slot` drop what is left of it, create it, record the next epoch with
 *   `repair_pending`, and repair: a snapshot repair backfill (version-rule.ts) copies every run at
 *   the snapshot's version and tombstones every row the snapshot lacks, while the stream resumes
 *   from the new slot. `repair_pending` is cleared only after the repair ended, so a restart in
 *   between repeats it.
 */
import type pg from 'pg';
import { PreflightError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Lsn, parseLsn } from '../lsn.ts';
import { readSlot } from '../source/catalog.ts';

export interface SlotRecord {
  slot: string;
  /** 1 for the first slot of this name runs-cdc streamed from; +1 at each recreation. */
  epoch: number;
  /** Where the slot's stream began (its confirmed position when it was created or adopted). */
  createdLsn: Lsn;
  /** A recreation's repair has not ended yet. */
  repairPending: boolean;
}

/** Where the slot records live (ClickHouse: sink/slot-ledger.ts). */
export interface SlotLedger {
  read(slot: string): Promise<SlotRecord | undefined>;
  write(record: SlotRecord): Promise<void>;
  /** Whether the runs table holds any row (replicated or backfilled). */
  holdsRows(): Promise<boolean>;
}

/** Repairs the gap: copies every run in one snapshot and tombstones what it lacks. */
export type GapRepair = (signal: AbortSignal) => Promise<void>;

export interface SlotGuard {
  ledger: SlotLedger;
  /** --recreate-slot: recreate a missing or lost slot and repair, instead of refusing. */
  recreateSlot: boolean;
  repair: GapRepair;
}

/** What the guard found before preflight: what to record once the slot exists. */
export interface SlotPlan {
  /** The record to extend once the slot exists (undefined: nothing recorded yet). */
  previous: SlotRecord | undefined;
  /** Record the slot after preflight (created now, or found unrecorded). */
  record: boolean;
  /** A repair must run (a recreation now, or one a previous run did not finish). */
  repair: boolean;
}

/**
 * Before preflight creates a missing slot: refuse, or prepare its recreation (dropping an
 * invalidated one), per the rules above.
 */
export async function checkSlotIdentity(sql: pg.ClientBase, slot: string, guard: SlotGuard, log: Logger): Promise<SlotPlan> {
  const previous = await guard.ledger.read(slot);
  const state = await readSlot(sql, slot);
  const lost = state?.walStatus === 'lost';
  if (state && !lost) {
    if (!previous) {
      log.info({ slot }, `recording slot ${slot} as the source of ClickHouse's rows`);
      return { previous, record: true, repair: false };
    }
    if (previous.repairPending) log.warn({ slot }, `the repair after slot ${slot} was recreated did not end; repairing again`);
    return { previous, record: false, repair: previous.repairPending };
  }
  const holdsRows = previous !== undefined || (await guard.ledger.holdsRows());
  if (!holdsRows) {
    // Nothing to repair: the first start creates the slot as always (a lost one is dropped first
    // only when asked; preflight otherwise says what happened to it).
    if (lost && guard.recreateSlot) await sql.query('SELECT pg_drop_replication_slot($1)', [slot]);
    return { previous, record: true, repair: false };
  }
  const what = lost ? 'is invalidated (wal_status=lost): WAL it needed was removed' : 'does not exist';
  if (!guard.recreateSlot) {
    throw new PreflightError(
      `replication slot ${slot} ${what}, but ClickHouse already holds rows replicated from it, so changes made since it was lost would be missing silently: restart with runs-cdc replicate --recreate-slot (creates it and repairs ClickHouse with a snapshot repair backfill while streaming resumes)`,
    );
  }
  if (lost) await sql.query('SELECT pg_drop_replication_slot($1)', [slot]);
  log.warn(
    { slot, epoch: (previous?.epoch ?? 0) + 1 },
    `replication slot ${slot} ${what}; --recreate-slot: creating it, then repairing the gap in ClickHouse (readyz is not ready until the repair ends)`,
  );
  return { previous, record: true, repair: true };
}

/** After preflight created (or found) the slot: record where its stream begins. */
export async function recordSlot(sql: pg.ClientBase, slot: string, plan: SlotPlan, ledger: SlotLedger): Promise<void> {
  if (!plan.record) return;
  const state = await readSlot(sql, slot);
  if (!state) throw new PreflightError(`replication slot ${slot} disappeared during startup: start runs-cdc replicate again`);
  const createdLsn = state.confirmedFlushLsn ? parseLsn(state.confirmedFlushLsn) : 0n;
  const epoch = plan.previous && plan.repair ? plan.previous.epoch + 1 : (plan.previous?.epoch ?? 1);
  await ledger.write({ slot, epoch, createdLsn, repairPending: plan.repair });
}

/** The repair ended: clear `repair_pending`. */
export async function repairEnded(slot: string, ledger: SlotLedger): Promise<void> {
  const record = await ledger.read(slot);
  if (record) await ledger.write({ ...record, repairPending: false });
}
