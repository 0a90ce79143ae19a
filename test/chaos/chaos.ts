/**
 * A seeded chaos run: a random workload on both tables (inserts of 1 to N rows per transaction,
 * updates of any column including large TOASTed payloads, sort-key moves, deletes, the legacy ->
 * task_run_v2 migration: copy, update the copy, delete the legacy row, in one transaction or
 * several, while the stale legacy copies keep being written to) and a
 * concurrent backfill of the rows that predate the slot, while faults are injected: the daemon
 * killed (state lost, as by SIGKILL) and restarted, ClickHouse refusing inserts for a while, the
 * walsender terminated. Afterwards verify must find the tables equal and the slot must have
 * confirmed the end of WAL.
 */
import { randomBytes } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { runBackfill } from '../../src/backfill/job.ts';
import { crash } from '../../src/failpoints.ts';
import { silentLogger } from '../../src/logger.ts';
import { SOURCE_TABLES, type SourceTable } from '../../src/schema/columns.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { Verifier, type VerifyReport } from '../../src/verify/verify.ts';
import { backfillContext, backfillRequest } from '../support/backfill.ts';
import { type RunningDaemon, startDaemon } from '../support/daemon.ts';
import { refuseInserts, slotConfirmedLsn, type TestPostgres, terminateWalsender, uniqueName, waitFor } from '../support/databases.ts';
import { copyRunsToV2, insertRuns, makeRun } from '../support/fixtures.ts';
import { prng as random } from '../support/fuzz.ts';

export interface ChaosOptions {
  seed: number;
  seconds: number;
  /** Largest transaction the workload writes. */
  maxTransactionRows: number;
  /** Pause up to this long between transactions (keeps the short run from starving other tests). */
  pauseMs: number;
}

export interface ChaosStats {
  seed: number;
  transactions: number;
  rowsChanged: number;
  faults: { kills: number; clickhouseOutages: number; walsenderTerminations: number };
  backfill: string;
  verify: VerifyReport;
  slotAtWalEnd: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(pgdb: TestPostgres, ch: ClickHouseClient, database: string, options: ChaosOptions): Promise<ChaosStats> {
  const rand = random(options.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const sql = pgdb.sql;
  const ids: Record<SourceTable, string[]> = { TaskRun: [], task_run_v2: [] };
  let index = 0;
  const newRuns = (table: SourceTable, n: number) =>
    Array.from({ length: n }, () => {
      index += 1;
      const run = makeRun({ table, index, createdAt: new Date(Date.UTC(2026, 10, 1) + Math.floor(rand() * 20 * 86_400_000)) });
      ids[table].push(run.id);
      return run;
    });

  // History before the slot exists: only the backfill can copy it.
  for (const table of SOURCE_TABLES) await insertRuns(sql, table, newRuns(table, 1500));
  const stats: ChaosStats = {
    seed: options.seed,
    transactions: 0,
    rowsChanged: 0,
    faults: { kills: 0, clickhouseOutages: 0, walsenderTerminations: 0 },
    backfill: '',
    verify: { columns: [], tables: [], differences: [], equal: false },
    slotAtWalEnd: false,
  };
  const slot = uniqueName('slot');
  const overrides = { slot, batchRows: 2_000, maxBufferedRows: 20_000 };
  let daemon: RunningDaemon = await startDaemon(pgdb, ch, database, overrides);
  const deadline = Date.now() + options.seconds * 1000;

  // Retries without limit, like the daemon's: the outages below are transient.
  const patient = new RunsTable(ch, database, { initialDelayMs: 50, maxDelayMs: 500 }, silentLogger);
  const backfillOptions = { slot, runsTable: patient, tuning: { chunkRows: 500, concurrency: 2 } };
  const backfill = runBackfill(sql, backfillRequest(), backfillContext(pgdb, ch, database, backfillOptions)).then((r) => {
    stats.backfill = `${r.status}: ${r.message}`;
  });

  const workload = (async () => {
    while (Date.now() < deadline) {
      const table = pick(SOURCE_TABLES);
      const op = rand();
      const some = (n: number) => Array.from({ length: n }, () => pick(ids[table]));
      if (op < 0.06) {
        // A migration step: the copies join task_run_v2's runs, their legacy ids stay for late writes.
        const chosen = Array.from({ length: 1 + Math.floor(rand() * 10) }, () => pick(ids.TaskRun));
        const oneTransaction = rand() < 0.5;
        if (oneTransaction) await sql.query('BEGIN');
        await copyRunsToV2(sql, chosen);
        if (rand() < 0.5) await sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = ANY($1)`, [chosen]);
        if (rand() < 0.7) await sql.query(`DELETE FROM "TaskRun" WHERE id = ANY($1)`, [chosen]);
        if (oneTransaction) await sql.query('COMMIT');
        ids.task_run_v2.push(...chosen);
        stats.rowsChanged += chosen.length;
      } else if (op < 0.35) {
        const n = rand() < 0.05 ? Math.ceil(rand() * options.maxTransactionRows) : 1 + Math.floor(rand() * 50);
        await insertRuns(sql, table, newRuns(table, n));
        stats.rowsChanged += n;
      } else if (op < 0.55) {
        const chosen = some(1 + Math.floor(rand() * 20));
        await sql.query(`UPDATE "${table}" SET status = $2, "updatedAt" = "updatedAt" + interval '1 second' WHERE id = ANY($1)`, [
          chosen,
          pick(['EXECUTING', 'COMPLETED_SUCCESSFULLY', 'CRASHED', 'CANCELED']),
        ]);
        stats.rowsChanged += chosen.length;
      } else if (op < 0.65) {
        // A large, incompressible payload: TOASTed out of line.
        await sql.query(`UPDATE "${table}" SET payload = $2, output = $3 WHERE id = $1`, [
          pick(ids[table]),
          randomBytes(12_000).toString('hex'),
          `{"n":${index}}`,
        ]);
        stats.rowsChanged += 1;
      } else if (op < 0.75) {
        // Untouched TOASTed payload, changed status: the old tuple must supply the payload.
        await sql.query(`UPDATE "${table}" SET "attemptNumber" = coalesce("attemptNumber", 0) + 1 WHERE id = $1`, [pick(ids[table])]);
        stats.rowsChanged += 1;
      } else if (op < 0.87) {
        const column = pick([
          '"createdAt" = "createdAt" + interval \'3 hours\'',
          `"projectId" = 'proj_moved'`,
          `"runtimeEnvironmentId" = 'env_moved'`,
        ]);
        const chosen = some(1 + Math.floor(rand() * 5));
        await sql.query(`UPDATE "${table}" SET ${column} WHERE id = ANY($1)`, [chosen]);
        stats.rowsChanged += chosen.length;
      } else {
        const chosen = some(1 + Math.floor(rand() * 10));
        await sql.query(`DELETE FROM "${table}" WHERE id = ANY($1)`, [chosen]);
        stats.rowsChanged += chosen.length;
      }
      stats.transactions += 1;
      if (options.pauseMs > 0) await sleep(rand() * options.pauseMs);
    }
  })();

  const faults = (async () => {
    while (Date.now() < deadline - 1_000) {
      await sleep(800 + rand() * 1_500);
      // The first fault is always the harshest (a kill while ClickHouse refuses inserts), so even
      // a short run has one; the rest are drawn from the seed.
      const fault = stats.faults.kills + stats.faults.clickhouseOutages + stats.faults.walsenderTerminations === 0 ? 0 : rand();
      if (fault < 0.15) {
        // Killed while ClickHouse refuses inserts: rows received but unwritten die with it.
        await refuseInserts(ch, database, true);
        await sleep(300 + rand() * 700);
        await crash(daemon.daemon);
        stats.faults.kills += 1;
        stats.faults.clickhouseOutages += 1;
        await refuseInserts(ch, database, false);
        daemon = await startDaemon(pgdb, ch, database, overrides);
      } else if (fault < 0.45) {
        await crash(daemon.daemon);
        stats.faults.kills += 1;
        await sleep(rand() * 300);
        daemon = await startDaemon(pgdb, ch, database, overrides);
      } else if (fault < 0.72) {
        await refuseInserts(ch, database, true);
        stats.faults.clickhouseOutages += 1;
        await sleep(300 + rand() * 1_200);
        await refuseInserts(ch, database, false);
      } else {
        await terminateWalsender(sql, slot);
        stats.faults.walsenderTerminations += 1;
      }
    }
  })();

  await Promise.all([workload, faults, backfill]);
  await refuseInserts(ch, database, false);
  const walEnd = await currentWalLsn(sql);
  await daemon.caughtUp(); // to the WAL end as it is now, which is past walEnd
  // The daemon has sent that position; Postgres records it when the walsender reads the update
  // (or, if the connection just dropped, when the next connection starts).
  stats.slotAtWalEnd = await waitFor(
    'the slot to reach the WAL end',
    async () => (await slotConfirmedLsn(sql, slot)) >= walEnd,
    20_000,
  ).catch(() => false);
  await daemon.stop();
  stats.verify = await new Verifier(sql, ch, database).run({ tables: SOURCE_TABLES, windowSeconds: 86_400, leafRows: 500 });
  return stats;
}
