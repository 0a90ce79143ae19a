/**
 * What the supervisor checks before it opens the replication connection, on short-lived ordinary
 * connections (withSql): Postgres is set up (preflight) and every target's table matches the
 * column mapping (one connection, shared with the slot guard's checks), then the slot is usable
 * and free (standing by while another process holds it; again on each reconnect).
 */
import type pg from 'pg';
import { StreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Lsn, parseLsn } from '../lsn.ts';
import type { RunsTargets } from '../sink/targets.ts';
import { readSlot } from '../source/catalog.ts';
import { withPostgres } from '../source/connection.ts';
import { assertUsableSlot, type PreflightOptions, type PreflightResult, preflightPostgres } from '../source/preflight.ts';

/** A short-lived ordinary connection for startup checks (the stream has its own). */
export function withSql<T>(databaseUrl: string, use: (sql: pg.Client) => Promise<T>): Promise<T> {
  return withPostgres(databaseUrl, use, { application_name: 'runs-cdc startup' });
}

/** Preflight Postgres, then check that every target's table matches the mapping; returns the
 * tables without FULL identity (--allow-partial-identity). */
export async function checkBeforeStreaming(
  sql: pg.ClientBase,
  settings: PreflightOptions,
  targets: RunsTargets,
  log: Logger,
): Promise<PreflightResult['partialIdentityTables']> {
  const { partialIdentityTables } = await preflightPostgres(sql, settings, log);
  for (const [, table] of targets.all) {
    const mismatches = await table.schemaMismatches();
    if (mismatches.length > 0) {
      throw new StreamError(
        `ClickHouse table ${table.qualifiedName} does not match runs-cdc's column mapping (${mismatches.slice(0, 3).join('; ')}): run runs-cdc migrate`,
      );
    }
  }
  return partialIdentityTables;
}

/** Sleeps `ms` in steps, returning early (true) once `halted()` says so. */
export async function sleepUnless(halted: () => boolean, ms: number): Promise<boolean> {
  const step = Math.min(ms, 100);
  for (let waited = 0; waited < ms && !halted(); waited += step) await new Promise((r) => setTimeout(r, step));
  return halted();
}

export interface FreeSlotWait {
  databaseUrl: string;
  slot: string;
  standbyRetryMs: number;
  log: Logger;
  halted: () => boolean;
  /** Called with the slot's confirmed position (0 when it has none) each time it is read. */
  onSlot: (confirmed: Lsn) => void;
  /** Called each time the slot is found held by another process. */
  onStandby: () => void;
}

/** Wait until the slot is usable and no other process holds it, or `halted()`. */
export async function waitForFreeSlot(wait: FreeSlotWait): Promise<void> {
  return withSql(wait.databaseUrl, async (sql) => {
    for (;;) {
      const slot = await readSlot(sql, wait.slot);
      if (!slot) {
        throw new StreamError(
          `replication slot ${wait.slot} disappeared: changes made since it was dropped are not in ClickHouse; restart with runs-cdc replicate --recreate-slot (creates it and repairs the gap)`,
        );
      }
      // On a reconnect too: the slot may have been invalidated while the connection was down.
      await assertUsableSlot(sql, slot, wait.slot);
      wait.onSlot(slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : 0n);
      if (!slot.active) return;
      wait.onStandby();
      wait.log.warn(
        { slot: wait.slot, pid: slot.activePid },
        `slot ${wait.slot} is in use by another process (pid ${slot.activePid}); standing by, retrying every ${wait.standbyRetryMs} ms`,
      );
      if (await sleepUnless(wait.halted, wait.standbyRetryMs)) return;
    }
  });
}
