/**
 * The demo: a private Postgres (wal_level=logical) and in-process ClickHouse (chDB), the runs
 * schema, a few thousand runs written into both tables (inserts, updates, deletes), a slice of
 * legacy runs migrated to task_run_v2, replicated by the daemon, then read back from ClickHouse
 * and compared with Postgres.
 */

import { backfillContextFor, backfillRequest, runBackfill } from '../backfill/job.ts';
import { redact } from '../config.ts';
import { type Logger, silentLogger } from '../logger.ts';
import { formatLsn } from '../lsn.ts';
import { startDaemonOps } from '../ops/daemon-ops.ts';
import { DaemonMetrics } from '../ops/metrics.ts';
import { oneTarget } from '../queries/params.ts';
import { RunQueries } from '../queries/run-queries.ts';
import { backfillSummary, formatTable } from '../report.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';
import { hasV2Copy } from '../schema/version.ts';
import { connectClickHouse } from '../sink/clickhouse.ts';
import { startEmbeddedStack } from './embedded-stack.ts';
import { completeRuns, copyRunsToV2, deleteRuns, insertRuns, makeRun } from './workload.ts';

export interface DemoReport {
  postgres: string;
  historyRuns: number;
  backfill: { status: string; rows: number; seconds: number };
  runsWritten: number;
  /** Legacy runs copied to task_run_v2 (then updated there, their legacy row deleted). */
  migratedRuns: number;
  /** Of those, the ones ClickHouse shows once, as their task_run_v2 copy. */
  migratedShownOnceAsV2: number;
  changes: number;
  replicationSeconds: number;
  rowsPerSecond: number;
  peakBufferedRows: number;
  clickhouseLiveRuns: number;
  postgresLiveRuns: number;
  equal: boolean;
}

const BATCH = 500;
/** Legacy runs the demo migrates to task_run_v2, the way the platform does. */
const MIGRATED_SLICE = 200;

/** `demo --serve`: keep the daemon running with its live page on `port` and a trickle of new
 * runs, until `until` resolves (the CLI resolves it on SIGINT/SIGTERM). */
export interface DemoServe {
  port: number;
  until: Promise<unknown>;
}

/** The explorer's filters for the demo's runs, as the live page takes them from its address. */
const DEMO_EXPLORER = '?org=org_1&project=proj_1&env=env_prod&from=2026-10-01';

export async function runDemo(runsPerTable: number, log: Logger, out: (line: string) => void, serve?: DemoServe): Promise<DemoReport> {
  const metrics = new DaemonMetrics();
  // History: runs from October, written before the slot exists, so only the backfill copies them.
  const historyPerTable = Math.ceil(runsPerTable / 2);
  const stack = await startEmbeddedStack(
    log,
    async (sql) => {
      for (const source of SOURCE_TABLES) {
        const october = Date.UTC(2026, 9, 1);
        const runs = Array.from({ length: historyPerTable }, (_, i) =>
          makeRun({ table: source, index: i, createdAt: new Date(october + i * 60_000), payloadBytes: 512 }),
        );
        for (let offset = 0; offset < runs.length; offset += BATCH) await insertRuns(sql, source, runs.slice(offset, offset + BATCH));
      }
    },
    metrics.observer,
  );
  const { server, sql, ch, table, replication } = stack;
  let closeQueries = async () => {};
  const { daemon } = replication;
  out(`Postgres (${server.kind}) on ${redact(server.url)}, ClickHouse: chDB in-process`);
  try {
    const started = performance.now();
    let written = 0;
    for (const source of SOURCE_TABLES) {
      for (let offset = 0; offset < runsPerTable; offset += BATCH) {
        const runs = Array.from({ length: Math.min(BATCH, runsPerTable - offset) }, (_, i) =>
          makeRun({ table: source, index: offset + i, payloadBytes: 512 }),
        );
        await insertRuns(sql, source, runs);
        written += runs.length;
        const ids = runs.map((r) => r.id);
        await completeRuns(
          sql,
          source,
          ids.filter((_, i) => i % 2 === 0),
          new Date(),
        );
        await deleteRuns(
          sql,
          source,
          ids.filter((_, i) => i % 10 === 9),
        );
      }
    }
    // The platform's migration, on a slice of the legacy runs: copy to task_run_v2 with the same
    // id, update the copy, then delete the legacy row. ClickHouse shows each run once throughout.
    const slice = await sql.query<{ id: string }>(`SELECT id FROM "TaskRun" ORDER BY "createdAt" DESC LIMIT ${MIGRATED_SLICE}`);
    const migrated = slice.rows.map((r) => r.id);
    await copyRunsToV2(sql, migrated);
    await sql.query(`UPDATE task_run_v2 SET engine = 'V2', "updatedAt" = now() WHERE id = ANY($1)`, [migrated]);
    await deleteRuns(sql, 'TaskRun', migrated);
    await replication.caughtUp(sql);
    const seconds = (performance.now() - started) / 1000;
    const shown = await ch.query({
      query: `SELECT countIf(source_table = 'task_run_v2') AS v2, count() AS rows FROM ${table.qualifiedName} FINAL WHERE _is_deleted = 0 AND run_id IN {ids:Array(String)}`,
      query_params: { ids: migrated },
      format: 'JSONEachRow',
    });
    const [migratedRows] = await shown.json<{ v2: string; rows: string }>();
    const migratedShownOnceAsV2 = Number(migratedRows?.v2) === Number(migratedRows?.rows) ? Number(migratedRows?.v2) : 0;
    out(
      `Migrated ${migrated.length} legacy runs to task_run_v2 (copied, updated, legacy row deleted): ClickHouse shows ${migratedShownOnceAsV2} of them, each once, as its v2 copy.`,
    );

    // The backfill copies the history with version 0 while the daemon keeps running: it can never
    // overwrite what CDC wrote. Here a few history runs change while it copies.
    const history = await sql.query<{ id: string }>(
      `SELECT id FROM "TaskRun" WHERE "createdAt" < '2026-11-01' ORDER BY "createdAt" LIMIT 20`,
    );
    const backfill = runBackfill(
      sql,
      backfillRequest({ to: '2026-11-01 00:00:00' }),
      backfillContextFor({ ...stack.config, backfillChunkRows: 1_000 }, ch, log, { runsTable: table }),
    );
    await completeRuns(
      sql,
      'TaskRun',
      history.rows.slice(0, 10).map((r) => r.id),
      new Date(),
    );
    await deleteRuns(
      sql,
      'TaskRun',
      history.rows.slice(10).map((r) => r.id),
    );
    const backfilled = await backfill;
    await replication.caughtUp(sql);
    if (!serve) await replication.stop();
    out(`\nBackfill of the history (runs created before 2026-11-01, older than the slot): ${backfillSummary(backfilled)}`);

    const liveQuery = await ch.query({
      query: `SELECT source_table, status, count() AS runs FROM ${table.qualifiedName} FINAL WHERE _is_deleted = 0 GROUP BY ALL ORDER BY source_table, status`,
      format: 'JSONEachRow',
    });
    const byStatus = await liveQuery.json<{ source_table: string; status: string; runs: string }>();
    const clickhouseLive = byStatus.reduce((sum, r) => sum + Number(r.runs), 0);
    // A run in both tables is one run: its task_run_v2 copy.
    const pgCount = await sql.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM "TaskRun" t WHERE NOT ${hasV2Copy('t')}) + (SELECT count(*) FROM task_run_v2) AS n`,
    );
    const postgresLive = Number(pgCount.rows[0]?.n);

    // The run list as a web app reads it: the typed query library (FINAL, tombstones hidden).
    // On a connection of its own: on chDB a query's readonly settings would stay on the writer's
    // session, and with --serve the daemon keeps writing.
    const queryClient = await connectClickHouse({ chdbPath: stack.config.chdbPath });
    closeQueries = () => queryClient.close();
    const queries = new RunQueries(queryClient, stack.config.clickhouseDatabase, { timeoutSeconds: 10, maxMemoryBytes: 2 ** 30 });
    const scope = { organizationId: 'org_1', projectId: 'proj_1', environmentId: 'env_prod', from: '2026-10-01' };
    const latest = await queries.list(scope, { limit: 8 });
    out('\nLatest runs (runs list, from ClickHouse):');
    out(
      formatTable(
        latest.runs.map((r) => ({
          id: r.friendlyId,
          table: r.sourceTable,
          task: r.taskIdentifier,
          status: r.status,
          created: r.createdAt,
          tags: r.tags,
        })),
      ),
    );
    const stats = await queries.stats(scope);
    out(`\nPer task since 2026-10-01 (runs stats), ${await queries.count({ ...scope, statuses: 'CRASHED' })} crashed runs (runs count):`);
    out(formatTable(stats.tasks));
    out('\nLive runs per table and status:');
    out(formatTable(byStatus));
    const replicated = daemon.snapshot();
    const report: DemoReport = {
      postgres: server.kind,
      historyRuns: historyPerTable * SOURCE_TABLES.length,
      backfill: { status: backfilled.status, rows: backfilled.rowsCopied, seconds: Number(backfilled.seconds.toFixed(2)) },
      runsWritten: written,
      migratedRuns: migrated.length,
      migratedShownOnceAsV2,
      changes: replicated.stats.changes,
      replicationSeconds: Number(seconds.toFixed(2)),
      rowsPerSecond: Math.round(replicated.stats.changes / seconds),
      peakBufferedRows: replicated.peakBufferedRows,
      clickhouseLiveRuns: clickhouseLive,
      postgresLiveRuns: postgresLive,
      equal: clickhouseLive === postgresLive && backfilled.status === 'SUCCESS' && migratedShownOnceAsV2 === migrated.length,
    };
    out(
      `\n${written} runs written, ${report.changes} changes replicated in ${report.replicationSeconds} s (${report.rowsPerSecond} changes/s, write to visible), ` +
        `peak buffer ${report.peakBufferedRows} rows, confirmed LSN ${formatLsn(replicated.confirmedLsn)}.`,
    );
    out(`Live runs: Postgres ${postgresLive}, ClickHouse ${clickhouseLive} — ${report.equal ? 'equal' : 'DIFFERENT'}.`);
    if (serve) await serveDemo(stack, metrics, queries, serve, out);
    return report;
  } finally {
    await closeQueries();
    await stack.close();
  }
}

/** Keep replicating with the live page up and a few runs a second, until `serve.until`. */
async function serveDemo(
  stack: Awaited<ReturnType<typeof startEmbeddedStack>>,
  metrics: DaemonMetrics,
  queries: RunQueries,
  serve: DemoServe,
  out: (line: string) => void,
): Promise<void> {
  const ops = await startDaemonOps({
    metrics,
    daemon: stack.replication.daemon,
    clickhouse: stack.ch,
    databaseUrl: stack.server.url,
    port: serve.port,
    host: '127.0.0.1',
    log: silentLogger,
    settings: stack.config,
    queries: oneTarget(queries),
  });
  out(`\nLive page: ${ops.url}/${DEMO_EXPLORER}  (metrics: ${ops.url}/metrics). Ctrl-C stops the demo.`);
  let index = 1_000_000;
  let stopped = false;
  const trickle = (async () => {
    while (!stopped) {
      const source = SOURCE_TABLES[index % SOURCE_TABLES.length] ?? 'TaskRun';
      const runs = Array.from({ length: 5 + (index % 20) }, (_, i) => makeRun({ table: source, index: index + i, createdAt: new Date() }));
      index += runs.length;
      await insertRuns(stack.sql, source, runs).catch(() => {});
      await completeRuns(
        stack.sql,
        source,
        runs.filter((_, i) => i % 3 === 0).map((r) => r.id),
        new Date(),
      ).catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  })();
  await serve.until;
  stopped = true;
  await trickle;
  await ops.close();
  await stack.replication.stop();
}
