/**
 * The daemon's /metrics after a known workload (values, not just names), and /healthz and
 * /readyz before and after it stops.
 */
import { expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { refuseInserts, testClickHouse, waitFor } from '../support/databases.ts';
import { deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';

/** The value of one series in Prometheus text, e.g. `name{a="b"}`. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

const env = freshEnvironmentPerTest();

it('reports received changes, written rows, flushes, lag and readiness after a known workload', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const metrics = new DaemonMetrics();
  const replication = await env.start({}, { observer: metrics.observer });
  const sink = replication.table;
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
  });
  try {
    await insertRuns(
      pgdb.sql,
      'TaskRun',
      Array.from({ length: 30 }, (_, i) => makeRun({ table: 'TaskRun', index: i })),
    );
    const v2 = Array.from({ length: 20 }, (_, i) => makeRun({ table: 'task_run_v2', index: i }));
    await insertRuns(pgdb.sql, 'task_run_v2', v2);
    await pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = ANY($1)`, [v2.slice(0, 10).map((r) => r.id)]);
    await deleteRuns(
      pgdb.sql,
      'task_run_v2',
      v2.slice(15).map((r) => r.id),
    );
    await replication.caughtUp();

    const confirmedBefore = replication.daemon.confirmedLsn; // only grows
    const text = await (await fetch(`${ops.url}/metrics`)).text();
    const walAfter = await currentWalLsn(pgdb.sql);
    expect(value(text, 'runs_cdc_changes_received_total{table="TaskRun",operation="insert"}')).toBe(30);
    expect(value(text, 'runs_cdc_changes_received_total{table="task_run_v2",operation="insert"}')).toBe(20);
    expect(value(text, 'runs_cdc_changes_received_total{table="task_run_v2",operation="update"}')).toBe(10);
    expect(value(text, 'runs_cdc_changes_received_total{table="task_run_v2",operation="delete"}')).toBe(5);
    expect(value(text, 'runs_cdc_transactions_received_total')).toBe(4);
    expect(value(text, 'runs_cdc_rows_written_total{table="TaskRun",kind="live"}')).toBe(30);
    expect(value(text, 'runs_cdc_rows_written_total{table="task_run_v2",kind="live"}')).toBe(30);
    expect(value(text, 'runs_cdc_rows_written_total{table="task_run_v2",kind="tombstone"}')).toBe(5);
    expect(value(text, 'runs_cdc_batch_rows_sum')).toBe(65);
    expect(value(text, 'runs_cdc_flush_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'runs_cdc_buffered_rows')).toBe(0);
    expect(value(text, 'runs_cdc_reconnects_total')).toBe(0);
    expect(value(text, 'runs_cdc_replication_lag_seconds')).toBe(0); // everything received is confirmed
    // Server WAL end at the scrape minus the confirmed LSN then: at most what the WAL grew past the
    // position confirmed before the scrape (nothing is waiting, so nearly nothing).
    expect(value(text, 'runs_cdc_replication_lag_bytes')).toBeLessThanOrEqual(Number(walAfter - confirmedBefore));

    // ClickHouse refuses inserts (TOO_MANY_PARTS): the new run waits, and lag and retries show it.
    await refuseInserts(ch, database, true);
    await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 100 })]);
    await waitFor('a retry', () => (sink.stats.retriesByReason.TOO_MANY_PARTS ?? 0) >= 1);
    await new Promise((r) => setTimeout(r, 1_100));
    const stalled = await (await fetch(`${ops.url}/metrics`)).text();
    expect(value(stalled, 'runs_cdc_replication_lag_seconds')).toBeGreaterThanOrEqual(1);
    expect(value(stalled, 'runs_cdc_replication_lag_bytes')).toBeGreaterThan(0);
    expect(value(stalled, 'runs_cdc_clickhouse_retries_total{reason="TOO_MANY_PARTS"}')).toBeGreaterThanOrEqual(1);
    expect(value(stalled, 'runs_cdc_buffered_rows')).toBe(1);
    await refuseInserts(ch, database, false);
    await replication.caughtUp();

    expect((await fetch(`${ops.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${ops.url}/readyz`);
    expect(ready.status).toBe(200);
    await replication.stop();
    const notReady = await fetch(`${ops.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { problems: string[] }).problems).toEqual(['not streaming from the replication slot']);
  } finally {
    await ops.close();
  }
});
