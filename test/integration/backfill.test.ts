/**
 * The backfill against real Postgres and ClickHouse: exact copies under both collations with a
 * page boundary inside 500 rows of one millisecond and inside microseconds of a timestamp(6)
 * column, abort and resume, a ClickHouse failure mid-job, and an empty range.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/backfill/checkpoints.ts';
import { planBackfill, resumeBackfill, runBackfill } from '../../src/backfill/job.ts';
import { silentProgress } from '../../src/backfill/progress.ts';
import type { BackfillContext } from '../../src/backfill/run.ts';
import { silentLogger } from '../../src/logger.ts';
import { BackfillMetrics } from '../../src/ops/backfill-metrics.ts';
import { SOURCE_TABLES, type SourceTable } from '../../src/schema/columns.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { backfillContext, backfillRequest, expectClickHouseEqualsPostgres, maxRowsPerRun, withFailpoint } from '../support/backfill.ts';
import {
  freshClickHouseDatabase,
  freshPostgres,
  liveRunCount,
  queryRows,
  refuseInserts,
  type TestPostgres,
  testClickHouse,
  uniqueName,
} from '../support/databases.ts';
import { insertRuns, makeRun, type RunRow } from '../support/fixtures.ts';
import { capturingLogger } from '../support/logs.ts';

/** Ids whose order differs between the C and en_US collations. */
const TRICKY = ['a_b', 'a-c', 'ab', 'aB', 'AB', 'A_b', 'a.b', 'a b', 'Ab-', 'ä'];
const SAME_MILLISECOND = '2026-11-01 00:05:00.123';

/** 1,500 runs a second apart, 500 in one millisecond with tricky ids, and (task_run_v2, made
 * timestamp(6)) 300 in one millisecond told apart only by microseconds. */
async function seed(pgdb: TestPostgres): Promise<number> {
  await pgdb.sql.query(`ALTER TABLE task_run_v2 ALTER COLUMN "createdAt" TYPE timestamp(6)`);
  let total = 0;
  for (const table of SOURCE_TABLES) {
    const runs: RunRow[] = Array.from({ length: 1500 }, (_, i) => makeRun({ table, index: i }));
    for (let i = 0; i < 500; i++) {
      runs.push({
        ...makeRun({ table, index: 2000 + i }),
        id: `${TRICKY[i % TRICKY.length]}${Math.floor(i / TRICKY.length)}${table === 'TaskRun' ? 'c' : 'k'}`,
        createdAt: SAME_MILLISECOND,
      });
    }
    if (table === 'task_run_v2') {
      for (let i = 0; i < 300; i++) {
        const micros = String(456_001 + (i % 150)).padStart(6, '0');
        runs.push({ ...makeRun({ table, index: 3000 + i }), createdAt: `2026-11-01 00:10:00.${micros}` });
      }
    }
    for (let offset = 0; offset < runs.length; offset += 500) await insertRuns(pgdb.sql, table, runs.slice(offset, offset + 500));
    total += runs.length;
  }
  await pgdb.sql.query('ANALYZE');
  return total;
}

async function sortedUnder(pgdb: TestPostgres): Promise<string> {
  const { rows } = await pgdb.sql.query<{ o: string }>(
    `SELECT string_agg(x, ' ' ORDER BY x) AS o FROM unnest(ARRAY['a_b', 'a-c', 'ab', 'aB', 'AB']) AS x`,
  );
  return rows[0]?.o ?? '';
}

let pgdb: TestPostgres | undefined;
let database: string;
let chClient: Awaited<ReturnType<typeof testClickHouse>>;

beforeEach(async () => {
  chClient = await testClickHouse();
  database = await freshClickHouseDatabase(chClient);
});
afterEach(async () => {
  await pgdb?.close();
  pgdb = undefined;
});

let slot: string;

/** The database with a replication slot of its own, as `runs-cdc replicate` leaves it. */
async function withSlot(db: TestPostgres): Promise<TestPostgres> {
  slot = uniqueName('slot');
  await db.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await db.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return db;
}

const context = (db: TestPostgres, overrides: Parameters<typeof backfillContext>[3] = {}) =>
  backfillContext(db, chClient, database, { slot, ...overrides });

describe.each([
  { collation: 'C', createOptions: '', order: 'AB a-c aB a_b ab' },
  { collation: 'en-US (ICU)', createOptions: `TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`, order: 'a_b a-c ab aB AB' },
])('ids sorted under $collation', ({ createOptions, order }) => {
  it('copies both tables exactly: pages split 500 rows of one millisecond and microseconds of a timestamp(6)', async () => {
    pgdb = await withSlot(await freshPostgres(undefined, true, createOptions));
    expect(await sortedUnder(pgdb)).toBe(order);
    const rows = await seed(pgdb);
    const ch = chClient;
    // 37-row pages and three sub-ranges per table: many boundaries land inside the tied rows.
    const ctx = context(pgdb, { tuning: { chunkRows: 37, concurrency: 3 } });
    const result = await runBackfill(pgdb.sql, backfillRequest(), ctx);
    expect(result.status, result.message).toBe('SUCCESS');
    expect(result.rowsCopied).toBe(rows); // each row read exactly once
    expect(await expectClickHouseEqualsPostgres(pgdb, ch, database)).toBe(rows);
    const ranges = await ctx.store.loadCheckpoints(result.jobId);
    expect(ranges).toHaveLength(6);
    expect(ranges.every((r) => r.done)).toBe(true);
  });
});

describe('one database', () => {
  beforeEach(async () => {
    pgdb = await withSlot(await freshPostgres());
  });

  it('aborted after a few pages and resumed: equal to Postgres, each run once under FINAL, the resume skips copied pages', async () => {
    const db = pgdb as TestPostgres;
    const rows = await seed(db);
    const ch = chClient;
    const abort = new AbortController();
    let pages = 0;
    const first = await withFailpoint(
      'backfill.page-read',
      async () => {
        pages += 1;
        if (pages === 8) abort.abort();
      },
      () => runBackfill(db.sql, backfillRequest(), context(db, { tuning: { chunkRows: 100, concurrency: 2 }, signal: abort.signal })),
    );
    expect(first.status).toBe('FAILURE');
    expect(first.message).toContain(`--resume ${first.jobId}`);
    const store = new CheckpointStore(ch, database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger);
    expect((await store.loadJob(first.jobId))?.status).toBe('FAILURE');
    const checkpointed = (await store.loadCheckpoints(first.jobId)).reduce((n, r) => n + r.rowsCopied, 0);
    expect(checkpointed).toBeGreaterThan(0);
    expect(checkpointed).toBeLessThan(rows);

    const resumed = await resumeBackfill(db.sql, first.jobId, false, context(db, { tuning: { chunkRows: 100 } }));
    expect(resumed.status, resumed.message).toBe('SUCCESS');
    expect(resumed.rowsCopied).toBe(rows - checkpointed);
    expect(resumed.tables.reduce((n, t) => n + t.copied, 0)).toBe(rows);
    expect(await expectClickHouseEqualsPostgres(db, ch, database)).toBe(rows);
    expect(await maxRowsPerRun(ch, database)).toBe(1);
    expect((await store.loadJob(first.jobId))?.status).toBe('SUCCESS');
  });

  it('ClickHouse failing mid-job: FAILURE with the reason, checkpoints cover exactly what was written, resume completes', async () => {
    const db = pgdb as TestPostgres;
    const table: SourceTable = 'TaskRun';
    await insertRuns(
      db.sql,
      table,
      Array.from({ length: 500 }, (_, i) => makeRun({ table, index: i })),
    );
    const ch = chClient;
    let pages = 0;
    const result = await withFailpoint(
      'backfill.page-read',
      async () => {
        pages += 1;
        // From the fourth page on, every insert into the partition fails with TOO_MANY_PARTS.
        if (pages === 4) {
          await refuseInserts(ch, database, true);
        }
      },
      () => runBackfill(db.sql, backfillRequest({ tables: [table] }), context(db, { tuning: { chunkRows: 50 } })),
    );
    expect(result.status).toBe('FAILURE');
    expect(result.message).toMatch(/TOO_MANY_PARTS.*3 times/);
    const [range] = await new CheckpointStore(ch, database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger).loadCheckpoints(
      result.jobId,
    );
    const [written] = await queryRows<{ n: string; last: string }>(
      ch,
      `SELECT count() AS n, max((created_at, run_id)).2 AS last FROM ${database}.task_runs_v2 FINAL`,
    );
    expect(range?.rowsCopied).toBe(150);
    expect(Number(written?.n)).toBe(150);
    expect(range?.cursor?.endsWith(`_${written?.last}`)).toBe(true);

    await refuseInserts(ch, database, false);
    const resumed = await resumeBackfill(db.sql, result.jobId, false, context(db, { tuning: { chunkRows: 50 } }));
    expect(resumed.status, resumed.message).toBe('SUCCESS');
    expect(resumed.rowsCopied).toBe(350);
    expect(await expectClickHouseEqualsPostgres(db, ch, database)).toBe(500);
  });

  it('reads the next page while the current one is written, and never more than one page ahead', async () => {
    const db = pgdb as TestPostgres;
    const table: SourceTable = 'task_run_v2';
    await insertRuns(
      db.sql,
      table,
      Array.from({ length: 1000 }, (_, i) => makeRun({ table, index: i })),
    );
    const sink = new RunsTable(chClient, database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger);
    let fetched = 0;
    let written = 0;
    /** Pages read but not yet in ClickHouse, seen during each write after giving a read-ahead time to land. */
    const heldDuringWrites: number[] = [];
    const slowSink: BackfillContext['runsTable'] = {
      async writeEncoded(rows, signal) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        heldDuringWrites.push(fetched - written);
        await sink.writeEncoded(rows, signal);
        written += 1;
      },
    };
    const result = await withFailpoint(
      'backfill.page-fetched',
      async () => {
        fetched += 1;
      },
      () => runBackfill(db.sql, backfillRequest({ tables: [table] }), context(db, { runsTable: slowSink, tuning: { chunkRows: 100 } })),
    );
    expect(result.status, result.message).toBe('SUCCESS');
    expect(await expectClickHouseEqualsPostgres(db, chClient, database)).toBe(1000);
    // 10 full pages, then the empty read that ends the range (read ahead during the tenth write).
    expect(fetched).toBe(11);
    expect(heldDuringWrites).toEqual(Array(10).fill(2));
  });

  it('--rate-limit caps rows per second across workers; --max-rows stops each table there', async () => {
    const db = pgdb as TestPostgres;
    for (const table of SOURCE_TABLES) {
      await insertRuns(
        db.sql,
        table,
        Array.from({ length: 1000 }, (_, i) => makeRun({ table, index: i })),
      );
    }
    // 2,000 rows at 1,000 rows/s: the first second's tokens are there at once, the rest take a
    // second more. Unlimited, this copy takes a fraction of that.
    const limited = await runBackfill(
      db.sql,
      backfillRequest(),
      context(db, { tuning: { chunkRows: 250, concurrency: 2, rateLimit: 1000 } }),
    );
    expect(limited.status).toBe('SUCCESS');
    expect(limited.rowsCopied).toBe(2000);
    expect(limited.seconds).toBeGreaterThanOrEqual(0.95);

    const capped = await runBackfill(db.sql, backfillRequest(), context(db, { tuning: { chunkRows: 30, concurrency: 2, maxRows: 100 } }));
    expect(capped.status).toBe('SUCCESS');
    expect(capped.message).toContain('stopped at --max-rows 100 per table');
    expect(capped.tables.map((t) => t.copied)).toEqual([100, 100]);
  });

  it("--resume keeps the job's rate limit, chunk and max rows unless the resume names a value, and says which it overrode", async () => {
    const db = pgdb as TestPostgres;
    const table: SourceTable = 'task_run_v2';
    await insertRuns(
      db.sql,
      table,
      Array.from({ length: 2000 }, (_, i) => makeRun({ table, index: i })),
    );
    const pages: number[] = [];
    /** Run `job`, recording each page's size; stop it after its `n`th read (that page is not
     * written). `job` gets the signal that stops it. */
    const stopAfter = <T>(n: number, job: (signal: AbortSignal) => Promise<T>): Promise<T> => {
      const abort = new AbortController();
      const pageRead = async (_: SourceTable, page: readonly unknown[]) => {
        pages.push(page.length);
        if (pages.length === n) abort.abort();
      };
      return withFailpoint('backfill.page-read', pageRead, () => job(abort.signal));
    };
    const request = backfillRequest({ tables: [table] });
    // Started with 1,000-row pages at 300 rows/s (so 300-row pages), at most 1,500 rows.
    const first = await stopAfter(2, (signal) =>
      runBackfill(db.sql, request, context(db, { tuning: { chunkRows: 1000, rateLimit: 300, maxRows: 1500 }, signal })),
    );
    expect(first.status).toBe('FAILURE');
    expect(pages).toEqual([300, 300]);

    // Resumed by a run whose own settings are the defaults (5,000-row pages, no limit, every row).
    pages.length = 0;
    const { log, lines } = capturingLogger('info');
    const second = await stopAfter(2, (signal) => resumeBackfill(db.sql, first.jobId, false, context(db, { log, signal })));
    expect(second.status).toBe('FAILURE');
    expect(pages).toEqual([300, 300]);
    expect(lines.join('')).toContain(
      `resuming backfill ${first.jobId} with its settings (chunk 1000 rows, rate 300 rows/s, concurrency 1, checkpoint every 10 pages, max rows 1500); none overridden`,
    );
    await expect(resumeBackfill(db.sql, first.jobId, false, context(db), { concurrency: 2 })).rejects.toThrow(
      '--concurrency 2 cannot apply to a resumed job: its sub-ranges were cut for concurrency 1 when it started',
    );

    // Resumed with --rate-limit 0: full 1,000-row pages, still at most 1,500 rows over the job.
    pages.length = 0;
    lines.length = 0;
    const third = await stopAfter(Number.POSITIVE_INFINITY, (signal) =>
      resumeBackfill(db.sql, first.jobId, false, context(db, { log, signal }), { rateLimit: 0, chunkRows: 1000 }),
    );
    expect(third.status, third.message).toBe('SUCCESS');
    expect(lines.join('')).toContain('overridden by this run: --rate-limit 300 -> 0');
    expect(pages).toEqual([900]);
    expect(third.message).toContain('stopped at --max-rows 1500 per table');
    expect(third.tables.map((t) => t.copied)).toEqual([1500]);
    expect(await liveRunCount(chClient, database)).toBe(1500); // 500 rows left out, as the job asked
  });

  it('--metrics-port figures: rows copied and expected per table', async () => {
    const db = pgdb as TestPostgres;
    await insertRuns(
      db.sql,
      'TaskRun',
      Array.from({ length: 120 }, (_, i) => makeRun({ table: 'TaskRun', index: i })),
    );
    await insertRuns(
      db.sql,
      'task_run_v2',
      Array.from({ length: 80 }, (_, i) => makeRun({ table: 'task_run_v2', index: i })),
    );
    const metrics = new BackfillMetrics(silentProgress);
    const result = await runBackfill(
      db.sql,
      backfillRequest({ exactCount: true }),
      context(db, { progress: metrics, tuning: { chunkRows: 50 } }),
    );
    expect(result.status).toBe('SUCCESS');
    const text = await metrics.registry.metrics();
    expect(text).toContain('runs_cdc_backfill_rows_copied{table="TaskRun"} 120');
    expect(text).toContain('runs_cdc_backfill_rows_copied{table="task_run_v2"} 80');
    expect(text).toContain('runs_cdc_backfill_rows_estimated{table="TaskRun"} 120');
  });

  it('a range with no rows ends EMPTY and writes no rows', async () => {
    const db = pgdb as TestPostgres;
    await insertRuns(db.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 0 })]);
    const ch = chClient;
    const result = await runBackfill(db.sql, backfillRequest({ from: '2030-01-01 00:00:00', to: '2030-02-01 00:00:00' }), context(db));
    expect(result.status).toBe('EMPTY');
    const [row] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM ${database}.task_runs_v2`);
    expect(Number(row?.n)).toBe(0);
  });

  it('without its replication slot it refuses to read and says what to run; --create-slot creates it', async () => {
    const db = await freshPostgres();
    try {
      await insertRuns(db.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 0 })]);
      const store = new CheckpointStore(chClient, database, { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger);
      const missing = uniqueName('slot');
      const result = await runBackfill(db.sql, backfillRequest(), context(db, { slot: missing }));
      expect(result.status).toBe('FAILURE');
      expect(result.message).toContain('start runs-cdc replicate first');
      // Another database's slot does not count: its changes are not this database's.
      const foreign = await runBackfill(db.sql, backfillRequest(), context(db, { slot }));
      expect(foreign.status).toBe('FAILURE');
      expect(foreign.message).toContain('belongs to database');
      expect(await store.listJobs()).toEqual([]);

      const created = await runBackfill(db.sql, backfillRequest({ createSlot: true }), context(db, { slot: missing }));
      expect(created.status).toBe('SUCCESS');
      expect((await db.sql.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [missing])).rowCount).toBe(1);
    } finally {
      await db.close();
    }
  });

  it('plans sub-ranges from statistics with estimates close to the real counts', async () => {
    const db = pgdb as TestPostgres;
    const rows = await seed(db);
    const plan = await planBackfill(db.sql, backfillRequest(), 4);
    expect(plan.ranges).toHaveLength(8);
    const estimated = plan.ranges.reduce((n, r) => n + r.estimated, 0);
    expect(Math.abs(estimated - rows) / rows).toBeLessThan(0.1);
    const exact = await planBackfill(db.sql, backfillRequest({ exactCount: true }), 4);
    expect(exact.ranges.reduce((n, r) => n + r.estimated, 0)).toBe(rows);
  });
});
