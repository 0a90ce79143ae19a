/**
 * The Grafana dashboard and the Prometheus alert rules only query metrics that exist: every
 * `runs_cdc_*` name in their queries (and in the rules' unit-test series) is a series of a live
 * daemon's /metrics after a workload, or of a backfill's metrics (`backfill --metrics-port`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { backfillContextFor, backfillRequest, runBackfill } from '../../src/backfill/job.ts';
import { silentProgress } from '../../src/backfill/progress.ts';
import { deleteRuns, insertRuns, makeRun } from '../../src/demo/workload.ts';
import { silentLogger } from '../../src/logger.ts';
import { BackfillMetrics } from '../../src/ops/backfill-metrics.ts';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { refuseInserts, testClickHouse, waitFor } from '../support/databases.ts';

const OPS = join(import.meta.dirname, '../../ops');
const DASHBOARD = join(OPS, 'grafana/dashboards/runs-cdc.json');
const RULES = join(OPS, 'prometheus/runs-cdc-alerts.yml');
const RULE_TESTS = join(OPS, 'prometheus/runs-cdc-alerts.test.yml');
/** Grafana's reference to the dashboard's data source variable. */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');

interface Target {
  expr?: string;
  datasource?: { uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { uid?: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

const metricNames = (text: string): Set<string> => new Set(text.match(/\bruns_cdc_[a-z0-9_]+/g) ?? []);

/** Names with at least one sample line in Prometheus text (not just HELP/TYPE). */
function sampledNames(text: string): Set<string> {
  return new Set(
    text
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => line.split(/[{ ]/, 1)[0] as string),
  );
}

const env = freshEnvironmentPerTest();

it('every metric the Grafana dashboard and the alert rules query is served by a live daemon or backfill', async () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const queries = [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? '')),
    ...dashboard.templating.list.map((v) => v.definition ?? ''),
  ].join('\n');
  const wanted = new Set([
    ...metricNames(queries),
    ...metricNames(readFileSync(RULES, 'utf8')),
    ...metricNames(readFileSync(RULE_TESTS, 'utf8')),
  ]);
  expect(wanted.size).toBeGreaterThan(20);

  // Provisioning-ready: the data source is a variable every panel and query uses.
  expect(dashboard.templating.list.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    expect(panel.datasource?.uid, panel.title).toBe(DATASOURCE_VARIABLE);
    for (const target of panel.targets ?? []) expect(target.datasource?.uid, panel.title).toBe(DATASOURCE_VARIABLE);
  }

  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const metrics = new DaemonMetrics();
  const replication = await env.start({}, { observer: metrics.observer });
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
  });
  try {
    const runs = Array.from({ length: 20 }, (_, i) => makeRun({ table: 'task_run_v2', index: i }));
    await insertRuns(pgdb.sql, 'task_run_v2', runs);
    await pgdb.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING' WHERE id = $1`, [runs[0]?.id]);
    await deleteRuns(pgdb.sql, 'task_run_v2', [runs[1]?.id as string]);
    await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 0 })]);
    await replication.caughtUp();
    // A refused insert, retried: the retries series exists only once there was one.
    await refuseInserts(ch, database, true);
    await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 1 })]);
    await waitFor('a retry', () => (replication.table.stats.retriesByReason.TOO_MANY_PARTS ?? 0) >= 1);
    await refuseInserts(ch, database, false);
    await replication.caughtUp();

    const backfillMetrics = new BackfillMetrics(silentProgress);
    const backfilled = await runBackfill(
      pgdb.sql,
      backfillRequest({}),
      backfillContextFor(replication.config, ch, silentLogger, { runsTable: replication.table, progress: backfillMetrics }),
    );
    expect(backfilled.status).toBe('SUCCESS');

    const text = await (await fetch(`${ops.url}/metrics`)).text();
    // The figures the alert rules read, with their values on a healthy daemon.
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1),
      );
    expect(value('runs_cdc_ready')).toBe(1);
    expect(value('runs_cdc_slot_wal_status{wal_status="reserved"}')).toBe(1);
    expect(value('runs_cdc_slot_wal_status{wal_status="lost"}')).toBe(0);
    expect(value('runs_cdc_slot_retained_wal_bytes')).toBeGreaterThan(0);
    expect(value('runs_cdc_replica_identity_full{table="TaskRun"}')).toBe(1);
    expect(value('runs_cdc_replica_identity_full{table="task_run_v2"}')).toBe(1);
    expect(value('runs_cdc_backfill_recent_jobs{status="SUCCESS"}')).toBe(1);
    expect(value('runs_cdc_backfill_recent_jobs{status="FAILURE"}')).toBe(0);
    expect(value('runs_cdc_buffer_limit_rows')).toBe(replication.config.maxBufferedRows);

    const served = new Set([...sampledNames(text), ...sampledNames(await backfillMetrics.registry.metrics())]);
    const missing = [...wanted].filter((name) => !served.has(name)).sort();
    expect(missing).toEqual([]);

    // Stopped, and a table without FULL identity: what RunsCdcNotReady and RunsCdcDegradedIdentity read.
    await replication.stop();
    await pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
    const after = await (await fetch(`${ops.url}/metrics`)).text();
    expect(after).toMatch(/^runs_cdc_ready 0$/m);
    expect(after).toMatch(/^runs_cdc_replica_identity_full\{table="task_run_v2"\} 0$/m);
    expect(after).toMatch(/^runs_cdc_replica_identity_full\{table="TaskRun"\} 1$/m);
  } finally {
    await ops.close();
  }
});
