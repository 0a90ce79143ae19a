/**
 * Degraded modes are visible: REPLICA IDENTITY switched from FULL to DEFAULT under a running
 * daemon. Replication goes on (values the changes lack are looked up in ClickHouse), but it is
 * warned once per table, counted by a metric, listed by /readyz and named by status.
 */
import { expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { gatherStatus } from '../../src/ops/status.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { testClickHouse } from '../support/databases.ts';
import { completeRuns, deleteRuns, insertRuns, makeRun } from '../support/fixtures.ts';
import { capturingLogger } from '../support/logs.ts';

const env = freshEnvironmentPerTest();

function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (!line) throw new Error(`no series ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

it('identity switched from FULL to DEFAULT mid-stream: one warning per table, a metric, /readyz and status say degraded', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const { log, lines } = capturingLogger();
  const metrics = new DaemonMetrics();
  const replication = await env.start({}, { log, observer: metrics.observer });
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
  });
  try {
    const runs = Array.from({ length: 10 }, (_, i) => makeRun({ table: 'task_run_v2', index: i }));
    await insertRuns(pgdb.sql, 'task_run_v2', runs);
    await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 1 })]);
    await replication.caughtUp();
    expect((await fetch(`${ops.url}/readyz`)).status).toBe(200);
    expect(value(await (await fetch(`${ops.url}/metrics`)).text(), 'runs_cdc_degraded_identity{table="task_run_v2"}')).toBe(0);

    await pgdb.sql.query('ALTER TABLE task_run_v2 REPLICA IDENTITY DEFAULT');
    await completeRuns(
      pgdb.sql,
      'task_run_v2',
      runs.slice(0, 3).map((r) => r.id),
      new Date(),
    );
    await deleteRuns(
      pgdb.sql,
      'task_run_v2',
      runs.slice(3, 5).map((r) => r.id),
    );
    await pgdb.sql.query('ALTER TABLE task_run_v2 ADD COLUMN note text'); // a new relation message, same identity
    await completeRuns(pgdb.sql, 'task_run_v2', [runs[6]?.id as string], new Date());
    await replication.caughtUp();

    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => String(l.msg).startsWith('DEGRADED'));
    expect(warnings.map((w) => w.table)).toEqual(['task_run_v2']);
    expect(warnings[0]?.msg).toContain('task_run_v2 now has REPLICA IDENTITY DEFAULT, not FULL');
    expect(replication.daemon.stats.degradedIdentity).toEqual({ task_run_v2: 'DEFAULT' });
    const text = await (await fetch(`${ops.url}/metrics`)).text();
    expect(value(text, 'runs_cdc_degraded_identity{table="task_run_v2"}')).toBe(1);
    expect(value(text, 'runs_cdc_degraded_identity{table="TaskRun"}')).toBe(0);
    const ready = await fetch(`${ops.url}/readyz`);
    expect(ready.status).toBe(200); // still replicating, at the cost of lookups
    expect(((await ready.json()) as { degraded: string[] }).degraded).toEqual([
      'task_run_v2 is replicated without REPLICA IDENTITY FULL (DEFAULT): deletes carry only the id and unchanged TOASTed values are looked up in ClickHouse; run ALTER TABLE "task_run_v2" REPLICA IDENTITY FULL',
    ]);
    const status = await gatherStatus(pgdb.sql, { slot: replication.config.slot, publication: 'runs_cdc', database }, ch, {
      maxInactiveSeconds: 600,
      maxRetainedWalBytes: 2 ** 30,
    });
    expect(status.problems.join('\n')).toContain(
      'table "task_run_v2" has REPLICA IDENTITY DEFAULT, but runs-cdc needs FULL so deletes and updates carry the whole old row (replication without it is DEGRADED',
    );
    await pgdb.sql.query('ALTER TABLE task_run_v2 DROP COLUMN note');
    await expectClickHouseEqualsPostgres(pgdb, ch, database); // the lookups kept it right
  } finally {
    await ops.close();
  }
});
