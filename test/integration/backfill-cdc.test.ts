/**
 * The version rule, under a live daemon: the backfill copies rows while CDC replicates updates,
 * deletes and sort-key moves of the very rows it is copying, and repair mode fixes a wrong row
 * without undoing a change committed after its snapshot.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { startPostgres } from '../../src/embedded/postgres.ts';
import { SOURCE_TABLES, type SourceTable } from '../../src/schema/columns.ts';
import type { Tuple } from '../../src/transform/row.ts';
import { backfillContext, backfillRequest, expectClickHouseEqualsPostgres, withFailpoint } from '../support/backfill.ts';
import { freshEnvironmentPerTest, startDaemon } from '../support/daemon.ts';
import { freshPostgres, queryRows, testClickHouse, waitFor } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

async function seedBeforeTheSlot(perTable: number): Promise<void> {
  for (const table of SOURCE_TABLES) {
    for (let offset = 0; offset < perTable; offset += 500) {
      await insertRuns(
        env.pgdb.sql,
        table,
        Array.from({ length: Math.min(500, perTable - offset) }, (_, i) => makeRun({ table, index: offset + i })),
      );
    }
  }
}

describe('default mode beside a live daemon', () => {
  it('rows updated, deleted and moved while (and right after) the backfill reads them end equal to Postgres', async () => {
    await seedBeforeTheSlot(1500); // committed before the slot: only the backfill can bring these
    const ch = await testClickHouse();
    const replication = await env.start();
    // One connection per concurrent actor (a pg.Client runs one query at a time): the backfill's
    // planning uses env.pgdb.sql, its two workers' page-read failpoints share a pool of their own,
    // and the workload below has its own client.
    const racers = new pg.Pool({ connectionString: env.pgdb.url, max: 2 });
    const workloadSql = new pg.Client({ connectionString: env.pgdb.url });
    await workloadSql.connect();
    let deletedAfterRead = 0;
    let movedAfterRead = 0;

    // Right after each page is read, before it is written: delete its first row, move its second
    // to another createdAt (a sort-key change), complete its third. CDC gets these with versions
    // above 0; the page lands with version 0 and must lose to every one of them.
    const afterRead = async (table: SourceTable, page: readonly Tuple[]) => {
      const [first, second, third] = page;
      if (first) {
        await racers.query(`DELETE FROM "${table}" WHERE id = $1`, [first.id]);
        deletedAfterRead += 1;
      }
      if (second) {
        await racers.query(`UPDATE "${table}" SET "createdAt" = "createdAt" + interval '1 day' WHERE id = $1`, [second.id]);
        movedAfterRead += 1;
      }
      if (third) {
        const client = await racers.connect();
        try {
          await completeRuns(client, table, [String(third.id)], new Date());
        } finally {
          client.release();
        }
      }
    };

    // Meanwhile, an unrelated workload: new runs, updates and deletes of old ones.
    let stopWorkload = false;
    const workload = (async () => {
      for (let round = 0; !stopWorkload; round++) {
        const table = SOURCE_TABLES[round % 2] as SourceTable;
        await insertRuns(workloadSql, table, [makeRun({ table, index: 10_000 + round })]);
        const { rows } = await workloadSql.query<{ id: string }>(`SELECT id FROM "${table}" ORDER BY random() LIMIT 3`);
        const [a, b] = rows.map((r) => r.id);
        if (a) await completeRuns(workloadSql, table, [a], new Date());
        if (b && round % 2 === 0) await deleteRuns(workloadSql, table, [b]);
      }
    })();

    let result: Awaited<ReturnType<typeof runBackfill>>;
    try {
      result = await withFailpoint('backfill.page-read', afterRead, () =>
        runBackfill(
          env.pgdb.sql,
          backfillRequest(),
          backfillContext(env.pgdb, ch, env.database, { slot: replication.config.slot, tuning: { chunkRows: 100, concurrency: 2 } }),
        ),
      );
    } finally {
      stopWorkload = true;
      await workload;
      await workloadSql.end();
      await racers.end();
    }
    expect(result.status, result.message).toBe('SUCCESS');
    expect(deletedAfterRead).toBeGreaterThanOrEqual(30);
    expect(movedAfterRead).toBeGreaterThanOrEqual(30);

    await replication.caughtUp();
    await expectClickHouseEqualsPostgres(env.pgdb, ch, env.database);
  });
});

describe('default mode and a commit that is in the WAL but not yet visible', () => {
  it('CDC still wins over the copy of the state before it (a read-time WAL position as version would not)', async () => {
    // A private cluster where a session with synchronous_commit=on waits after its commit record
    // is flushed (so the slot decodes it) and before the commit becomes visible to readers.
    const server = await startPostgres({ settings: ['synchronous_standby_names=nobody', 'synchronous_commit=local'] });
    const pgdb = await freshPostgres(server.url);
    const racer = new pg.Client({ connectionString: pgdb.url });
    try {
      const ch = await testClickHouse();
      const run = makeRun({ table: 'task_run_v2', index: 0 });
      await insertRuns(pgdb.sql, 'task_run_v2', [run]);
      const daemon = await startDaemon(pgdb, ch, env.database);
      try {
        await racer.connect();
        racer.on('notice', () => {}); // "canceling wait for synchronous replication"
        await racer.query('SET synchronous_commit = on');
        const update = racer.query(`UPDATE task_run_v2 SET status = 'CANCELED' WHERE id = $1`, [run.id]);
        await waitFor('the update to wait for a standby', async () => {
          const { rows } = await pgdb.sql.query(
            `SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND datname = current_database()`,
          );
          return rows.length === 1;
        });
        const result = await runBackfill(
          pgdb.sql,
          backfillRequest(),
          backfillContext(pgdb, ch, env.database, { slot: daemon.config.slot }),
        );
        expect(result.status).toBe('SUCCESS');
        await pgdb.sql.query(`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`);
        await update;
        await daemon.caughtUp();
        const [row] = await queryRows<{ status: string }>(
          ch,
          `SELECT status FROM ${env.database}.task_runs_v2 FINAL WHERE _is_deleted = 0`,
        );
        expect(row?.status).toBe('CANCELED');
      } finally {
        await daemon.stop();
      }
    } finally {
      await racer.end().catch(() => {});
      await pgdb.close();
      await server.stop();
    }
  });
});

describe('repair mode', () => {
  it('fixes a row that is wrong in ClickHouse and does not undo a change committed after its snapshot', async () => {
    const ch = await testClickHouse();
    const replication = await env.start();
    const sql = env.pgdb.sql;
    const table: SourceTable = 'task_run_v2';
    const runs = Array.from({ length: 300 }, (_, i) => makeRun({ table, index: i }));
    await insertRuns(sql, table, runs);
    await replication.caughtUp();
    const qualified = `${env.database}.task_runs_v2`;
    const [wrongId, laterId] = [runs[10]?.id as string, runs[0]?.id as string];

    // Corrupt one run: same sort key, a version just above CDC's, nonsense in it.
    const [current] = await queryRows<Record<string, unknown>>(ch, `SELECT * FROM ${qualified} FINAL WHERE run_id = {id:String}`, {
      id: wrongId,
    });
    const corrupt = {
      ...current,
      status: 'CORRUPTED',
      task_identifier: 'bogus',
      _version: (BigInt(String(current?._version)) + 1n).toString(),
    };
    await ch.insert({ table: qualified, values: [corrupt], format: 'JSONEachRow' });
    const statusOf = async (id: string) =>
      (
        await queryRows<{ status: string }>(ch, `SELECT status FROM ${qualified} FINAL WHERE run_id = {id:String} AND _is_deleted = 0`, {
          id,
        })
      )[0]?.status;
    expect(await statusOf(wrongId)).toBe('CORRUPTED');

    const context = (mode: 'default' | 'repair') =>
      runBackfill(
        sql,
        backfillRequest({ tables: [table], mode }),
        backfillContext(env.pgdb, ch, env.database, { slot: replication.config.slot, tuning: { chunkRows: 50, concurrency: 2 } }),
      );

    // Version 0 cannot beat what CDC wrote: this is what repair mode is for.
    expect((await context('default')).status).toBe('SUCCESS');
    expect(await statusOf(wrongId)).toBe('CORRUPTED');

    // In repair mode, a change committed after the snapshot (made right after its page was read)
    // must survive the copy of the older state.
    // The two workers' failpoint has a client of its own (only one of them makes the change).
    let changed = false;
    const racer = new pg.Client({ connectionString: env.pgdb.url });
    await racer.connect();
    const repaired = await withFailpoint(
      'backfill.page-read',
      async (_table, page) => {
        if (!changed && page.some((t) => t.id === laterId)) {
          changed = true;
          await racer.query(`UPDATE task_run_v2 SET status = 'CANCELED' WHERE id = $1`, [laterId]);
        }
      },
      () => context('repair'),
    ).finally(() => racer.end());
    expect(repaired.status, repaired.message).toBe('SUCCESS');
    expect(changed).toBe(true);
    await replication.caughtUp();
    expect(await statusOf(wrongId)).toBe('PENDING');
    expect(await statusOf(laterId)).toBe('CANCELED');
    await expectClickHouseEqualsPostgres(env.pgdb, ch, env.database);
  });
});
