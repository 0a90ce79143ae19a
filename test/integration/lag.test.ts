/**
 * Lag is true during big transactions: while ClickHouse refuses the rows of a large transaction,
 * its BEGIN (which carries the commit's LSN and time) already counts, so lag in seconds and bytes
 * grows, in the snapshot, the metrics and the 30 s progress summary, and falls back to 0 once it
 * is written and confirmed.
 */
import { expect, it } from 'vitest';
import { progressSummary } from '../../src/cli/replicate.ts';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { refuseInserts, testClickHouse, waitFor } from '../support/databases.ts';

const env = freshEnvironmentPerTest();

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

const bulkInsert = (from: number, to: number) =>
  `INSERT INTO task_run_v2 (id, "friendlyId", "taskIdentifier", payload, "traceId", "spanId", "runtimeEnvironmentId", "projectId", "organizationId", queue, "createdAt")
   SELECT 'run_' || g, 'f_' || g, 'bulk', '{}', 't', 's', 'env', 'proj', 'org', 'q', timestamp '2026-06-01' + g * interval '1 ms'
   FROM generate_series(${from}, ${to}) g`;

it('a 30,000-row transaction ClickHouse refuses: lag seconds and bytes grow from its BEGIN, then return to 0', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const metrics = new DaemonMetrics();
  const replication = await env.start({ maxBufferedRows: 5_000, batchRows: 1_000 }, { observer: metrics.observer });
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
  });
  try {
    await pgdb.sql.query(bulkInsert(0, 0)); // a part in the partition, so it can refuse inserts
    await replication.caughtUp();
    expect(replication.daemon.snapshot()).toMatchObject({ lagSeconds: 0, lagBytes: 0 });

    await refuseInserts(ch, database, true);
    await pgdb.sql.query(bulkInsert(1, 30_000));
    await waitFor('the transaction to be received and refused', () => replication.table.stats.retries >= 2);
    await new Promise((r) => setTimeout(r, 1_100)); // lag is measured from the commit time
    const { lagSeconds, lagBytes, stats } = replication.daemon.snapshot();
    expect(stats.transactions).toBe(1); // its commit has not been handled: only the BEGIN and rows count
    expect(lagSeconds).toBeGreaterThanOrEqual(1);
    expect(lagSeconds).toBeLessThan(600); // from the BEGIN's commit time, read on the right epoch
    expect(lagBytes).toBeGreaterThan(0);
    const summary = progressSummary(replication.daemon.snapshot(), 0);
    expect(summary.lagSeconds).toBeGreaterThanOrEqual(1);
    expect(summary.lagBytes).toBeGreaterThan(0);
    const text = await (await fetch(`${ops.url}/metrics`)).text();
    expect(value(text, 'runs_cdc_replication_lag_seconds')).toBeGreaterThanOrEqual(1);
    expect(value(text, 'runs_cdc_replication_lag_bytes')).toBeGreaterThanOrEqual(lagBytes);

    await refuseInserts(ch, database, false);
    await replication.caughtUp();
    expect(replication.daemon.snapshot()).toMatchObject({ lagSeconds: 0, lagBytes: 0 });
  } finally {
    await ops.close();
  }
});
