/**
 * No silent gap when the slot changes (replication/slot-guard.ts): a slot dropped while the daemon
 * was stopped makes replicate refuse once ClickHouse holds rows from it, and --recreate-slot
 * creates it and repairs every change of the gap (inserts, updates, deletes, a sort-key move)
 * while streaming resumes, not ready until the repair ends.
 */
import { expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { ClickHouseSlotLedger } from '../../src/sink/slot-ledger.ts';
import { readSlot } from '../../src/source/catalog.ts';
import { expectClickHouseEqualsPostgres, withFailpoint } from '../support/backfill.ts';
import { freshEnvironmentPerTest, startDaemon, startTestOps } from '../support/daemon.ts';
import { freshClickHouseDatabase, invalidateSlot, testClickHouse, uniqueName, waitFor, withOwnPostgres } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

it('a slot dropped while stopped: replicate refuses, and --recreate-slot repairs the gap so ClickHouse equals Postgres', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const slot = uniqueName('slot');
  const ledger = new ClickHouseSlotLedger(ch, database);

  // The first start on an empty ClickHouse creates the slot and records it.
  const first = await env.start({ slot }, { guardSlot: true });
  const legacy = Array.from({ length: 30 }, (_, i) => makeRun({ table: 'TaskRun', index: i }));
  const v2 = Array.from({ length: 30 }, (_, i) => makeRun({ table: 'task_run_v2', index: i }));
  await insertRuns(pgdb.sql, 'TaskRun', legacy);
  await insertRuns(pgdb.sql, 'task_run_v2', v2);
  await first.caughtUp();
  await first.stop();
  expect(await ledger.read(slot)).toMatchObject({ slot, epoch: 1, repairPending: false });

  // Stopped: the slot is dropped, and changes of every kind are made while none exists.
  await pgdb.sql.query('SELECT pg_drop_replication_slot($1)', [slot]);
  await insertRuns(
    pgdb.sql,
    'task_run_v2',
    Array.from({ length: 10 }, (_, i) => makeRun({ table: 'task_run_v2', index: 100 + i })),
  );
  await completeRuns(
    pgdb.sql,
    'task_run_v2',
    v2.slice(0, 5).map((r) => r.id),
    new Date(),
  );
  await deleteRuns(
    pgdb.sql,
    'task_run_v2',
    v2.slice(5, 10).map((r) => r.id),
  );
  await deleteRuns(
    pgdb.sql,
    'TaskRun',
    legacy.slice(0, 3).map((r) => r.id),
  );
  await pgdb.sql.query(`UPDATE "TaskRun" SET "createdAt" = "createdAt" + interval '1 day' WHERE id = $1`, [legacy[3]?.id]);

  // Without --recreate-slot: refuses with the fix, and creates nothing.
  await expect(startDaemon(pgdb, ch, database, { slot }, { guardSlot: true })).rejects.toThrow(
    `replication slot ${slot} does not exist, but ClickHouse already holds rows replicated from it, so changes made since it was lost would be missing silently: restart with runs-cdc replicate --recreate-slot`,
  );
  expect(await readSlot(pgdb.sql, slot)).toBeUndefined();

  // With it: the repair is held at its first page while a change made after its snapshot streams in.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let pagesRead = 0;
  await withFailpoint(
    'backfill.page-read',
    async () => {
      pagesRead += 1;
      if (pagesRead === 1) await held;
    },
    async () => {
      const metrics = new DaemonMetrics();
      const second = await startDaemon(pgdb, ch, database, { slot, recreateSlot: true }, { guardSlot: true, observer: metrics.observer });
      const ops = await startTestOps(second, ch, pgdb.url, {
        metrics,
      });
      try {
        await waitFor('the repair to read its first page', () => pagesRead >= 1);
        expect(await ledger.read(slot)).toMatchObject({ epoch: 2, repairPending: true });
        const notReady = await fetch(`${ops.url}/readyz`);
        expect(notReady.status).toBe(503);
        expect(((await notReady.json()) as { problems: string[] }).problems).toEqual([
          'repairing the gap after the replication slot was recreated (--recreate-slot)',
        ]);
        expect(value(await (await fetch(`${ops.url}/metrics`)).text(), 'runs_cdc_slot_gap_repair_running')).toBe(1);

        // After the snapshot: CDC carries it with a higher version than the repair's rows.
        await completeRuns(
          pgdb.sql,
          'task_run_v2',
          v2.slice(20, 25).map((r) => r.id),
          new Date(),
        );
        await second.caughtUp();
        release();
        await waitFor('the repair to end', () => !second.daemon.snapshot().repairingGap, 30_000);
        await second.caughtUp();

        expect(await expectClickHouseEqualsPostgres(pgdb, ch, database)).toBe(30 - 3 + 30 - 5 + 10);
        expect((await fetch(`${ops.url}/readyz`)).status).toBe(200);
        expect(value(await (await fetch(`${ops.url}/metrics`)).text(), 'runs_cdc_slot_gap_repair_running')).toBe(0);
        expect(await ledger.read(slot)).toMatchObject({ epoch: 2, repairPending: false });
      } finally {
        release();
        await ops.close();
        await second.stop();
      }
    },
  );
});

it('a slot invalidated while stopped (wal_status=lost) over replicated rows: refused, then --recreate-slot drops it, recreates it and repairs', async () => {
  const settings = ['max_slot_wal_keep_size=1MB', 'wal_keep_size=0', 'min_wal_size=32MB', 'max_wal_size=32MB'];
  await withOwnPostgres(
    async (pgdb) => {
      const ch = await testClickHouse();
      const database = await freshClickHouseDatabase(ch);
      const slot = uniqueName('slot');
      const first = await startDaemon(pgdb, ch, database, { slot }, { guardSlot: true });
      const runs = Array.from({ length: 20 }, (_, i) => makeRun({ table: 'task_run_v2', index: i }));
      await insertRuns(pgdb.sql, 'task_run_v2', runs);
      await first.caughtUp();
      await first.stop();

      // Stopped: changes, then far more WAL than the slot may keep, written and recycled.
      await deleteRuns(
        pgdb.sql,
        'task_run_v2',
        runs.slice(0, 4).map((r) => r.id),
      );
      await completeRuns(
        pgdb.sql,
        'task_run_v2',
        runs.slice(4, 8).map((r) => r.id),
        new Date(),
      );
      await invalidateSlot(pgdb.sql, slot);

      await expect(startDaemon(pgdb, ch, database, { slot }, { guardSlot: true })).rejects.toThrow(
        `replication slot ${slot} is invalidated (wal_status=lost): WAL it needed was removed, but ClickHouse already holds rows replicated from it`,
      );
      // A --max-rows in the environment must not cut the repair short: a run it left out would be tombstoned.
      const second = await startDaemon(pgdb, ch, database, { slot, recreateSlot: true, backfillMaxRows: 3 }, { guardSlot: true });
      try {
        await waitFor('the repair to end', () => !second.daemon.snapshot().repairingGap, 30_000);
        await second.caughtUp();
        expect((await readSlot(pgdb.sql, slot))?.walStatus).not.toBe('lost');
        expect(await expectClickHouseEqualsPostgres(pgdb, ch, database)).toBe(16);
        expect(await new ClickHouseSlotLedger(ch, database).read(slot)).toMatchObject({ epoch: 2, repairPending: false });
      } finally {
        await second.stop();
      }
    },
    { settings },
  );
});
