/**
 * Organizations routed to another ClickHouse target (here another database of the same engine):
 * each run lands in its organization's target, a run moved to another organization is
 * tombstoned in the old target, and a transaction is acknowledged only when every target has it.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { openTargets } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config.ts';
import { silentLogger } from '../../src/logger.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { RunsTargets } from '../../src/sink/targets.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { backfillContext, backfillRequest } from '../support/backfill.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { freshClickHouseDatabase, queryRows, refuseInserts, testClickHouse, uniqueName, waitFor } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

/** `org:runs` per organization in a target, live runs only. */
async function liveRunsPerOrganization(ch: ClickHouseClient, database: string): Promise<string[]> {
  const rows = await queryRows<{ org: string; n: string }>(
    ch,
    `SELECT organization_id AS org, count() AS n FROM ${database}.task_runs_v2 FINAL WHERE _is_deleted = 0 GROUP BY org ORDER BY org`,
  );
  return rows.map((r) => `${r.org}:${r.n}`);
}

it('routes organizations to their targets, moves runs between them, and acks only when all targets have a transaction', async () => {
  const ch = await testClickHouse();
  const euDatabase = await freshClickHouseDatabase(ch);
  const eu = RunsTable.fromConfig(ch, { clickhouseDatabase: euDatabase, retryInitialMs: 50, retryMaxMs: 200 }, silentLogger);
  const routing = { targets: new Map([['eu', eu]]), organizations: { org_eu: 'eu' } };
  const replication = await env.start({}, { routing });
  const live = (database: string) => liveRunsPerOrganization(ch, database);
  const runs = [
    ...Array.from({ length: 5 }, (_, i) => makeRun({ table: 'TaskRun', index: i, organizationId: 'org_1' })),
    ...Array.from({ length: 5 }, (_, i) => makeRun({ table: 'TaskRun', index: 10 + i, organizationId: 'org_eu' })),
  ];
  await insertRuns(env.pgdb.sql, 'TaskRun', runs); // one transaction for both targets
  await replication.caughtUp();
  expect(await live(env.database)).toEqual(['org_1:5']);
  expect(await live(euDatabase)).toEqual(['org_eu:5']);

  // A run moving to the routed organization: tombstoned where it was, live where it goes.
  await env.pgdb.sql.query(`UPDATE "TaskRun" SET "organizationId" = 'org_eu' WHERE id = $1`, [runs[0]?.id]);
  await replication.caughtUp();
  expect(await live(env.database)).toEqual(['org_1:4']);
  expect(await live(euDatabase)).toEqual(['org_eu:6']);

  // The eu target refuses inserts: the transaction touching both is not acknowledged.
  await refuseInserts(ch, euDatabase, true);
  await insertRuns(env.pgdb.sql, 'TaskRun', [
    makeRun({ table: 'TaskRun', index: 20, organizationId: 'org_1' }),
    makeRun({ table: 'TaskRun', index: 21, organizationId: 'org_eu' }),
  ]);
  const end = await currentWalLsn(env.pgdb.sql);
  await waitFor('the eu target to fail a few times', () => (eu.stats.retriesByReason.TOO_MANY_PARTS ?? 0) >= 3);
  expect(replication.daemon.confirmedLsn).toBeLessThan(end);
  await refuseInserts(ch, euDatabase, false);
  await replication.caughtUp();
  expect(await live(env.database)).toEqual(['org_1:5']);
  expect(await live(euDatabase)).toEqual(['org_eu:7']);
});

it('the backfill routes the same way', async () => {
  const ch = await testClickHouse();
  const euDatabase = await freshClickHouseDatabase(ch);
  const slot = uniqueName('slot');
  await insertRuns(env.pgdb.sql, 'task_run_v2', [
    ...Array.from({ length: 3 }, (_, i) => makeRun({ table: 'task_run_v2', index: i, organizationId: 'org_1' })),
    ...Array.from({ length: 4 }, (_, i) => makeRun({ table: 'task_run_v2', index: 10 + i, organizationId: 'org_eu' })),
  ]);
  await env.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  const retry = { initialDelayMs: 10, maxDelayMs: 10 };
  const routed = new RunsTargets(new RunsTable(ch, env.database, retry, silentLogger), {
    targets: new Map([['eu', new RunsTable(ch, euDatabase, retry, silentLogger)]]),
    organizations: { org_eu: 'eu' },
  });
  const result = await runBackfill(
    env.pgdb.sql,
    backfillRequest(),
    backfillContext(env.pgdb, ch, env.database, { slot, runsTable: routed }),
  );
  expect(result.status).toBe('SUCCESS');
  expect(await liveRunsPerOrganization(ch, env.database)).toEqual(['org_1:3']);
  expect(await liveRunsPerOrganization(ch, euDatabase)).toEqual(['org_eu:4']);
});

it('the commands open every target, routed ones too, with the same retry limit (a backfill must end, not retry forever)', async () => {
  const ch = await testClickHouse();
  const euDatabase = await freshClickHouseDatabase(ch);
  const routes = JSON.stringify({ targets: { eu: { database: euDatabase } }, organizations: { org_eu: 'eu' } });
  const config = loadConfig({ databaseUrl: env.pgdb.url, clickhouseDatabase: env.database, routes }, {});
  const opened = await openTargets(config, ch, silentLogger, 2);
  try {
    const eu = opened.routing?.targets.get('eu');
    expect(eu?.database).toBe(euDatabase);
    expect(eu?.retryContext.policy.maxRetries).toBe(2);
    expect(opened.sink.retryContext.policy.maxRetries).toBe(2);
  } finally {
    await opened.close();
  }
});
