/**
 * Memory stays bounded and nothing is confirmed past what ClickHouse holds, with real Postgres
 * and a real ClickHouse table that is made to reject inserts for a while.
 */
import { describe, expect, it } from 'vitest';
import { SinkFatalError } from '../../src/errors.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { liveRunCount, refuseInserts, slotConfirmedLsn, testClickHouse, unconfirmedInSlot, waitFor } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

const liveCount = async () => liveRunCount(await testClickHouse(), env.database);

describe('backpressure', () => {
  it('a 50,000-row transaction replicates in pieces without exceeding the buffer limit', async () => {
    const limit = 5_000;
    const replication = await env.start({ maxBufferedRows: limit, batchRows: 1_000 });
    await env.pgdb.sql.query(
      `INSERT INTO task_run_v2 (id, "friendlyId", "taskIdentifier", payload, "traceId", "spanId", "runtimeEnvironmentId", "projectId", "organizationId", queue, "createdAt")
       SELECT 'run_' || g, 'f_' || g, 'bulk', '{}', 't', 's', 'env', 'proj', 'org', 'q', timestamp '2026-06-01' + g * interval '1 ms'
       FROM generate_series(1, 50000) g`,
    );
    await replication.caughtUp();
    expect(await liveCount()).toBe(50_000);
    const { highWaterRows, flushes } = replication.daemon.buffer.stats;
    expect(highWaterRows).toBeLessThanOrEqual(limit);
    expect(highWaterRows).toBeGreaterThan(0);
    // One transaction, many inserts: it was flushed in pieces before its commit was confirmed.
    expect(flushes).toBeGreaterThanOrEqual(50);
  });
});

describe('ClickHouse failures', () => {
  it('while inserts fail, the slot does not move; after recovery every row is there', async () => {
    const ch = await testClickHouse();
    const replication = await env.start();
    const first = makeRun({ table: 'TaskRun', index: 0 });
    await insertRuns(env.pgdb.sql, 'TaskRun', [first]);
    await replication.caughtUp();

    // One part exists in the partition: with parts_to_throw_insert = 1 every insert there fails
    // with TOO_MANY_PARTS, the transient error of an overloaded server.
    await refuseInserts(ch, env.database, true);
    const runs = Array.from({ length: 20 }, (_, i) => makeRun({ table: 'TaskRun', index: i + 1 }));
    await insertRuns(env.pgdb.sql, 'TaskRun', runs);
    const walAfterInsert = await currentWalLsn(env.pgdb.sql);
    await waitFor('a few failed inserts', () => replication.table.stats.retries >= 3);
    expect(replication.table.stats.retriesByReason.TOO_MANY_PARTS).toBeGreaterThanOrEqual(3);
    // Idle keepalives may have moved the slot over other databases' WAL before the insert came;
    // from then on it stays put, short of the insert's commit.
    const stalled = await slotConfirmedLsn(env.pgdb.sql, replication.config.slot);
    expect(stalled).toBeLessThan(walAfterInsert);
    await waitFor('more failed inserts', () => replication.table.stats.retries >= 6);
    expect(await slotConfirmedLsn(env.pgdb.sql, replication.config.slot)).toBe(stalled);
    expect(replication.daemon.confirmedLsn).toBe(stalled);
    expect(await liveCount()).toBe(1);

    await refuseInserts(ch, env.database, false);
    await replication.caughtUp();
    expect(await liveCount()).toBe(21);
    expect(replication.daemon.confirmedLsn).toBeGreaterThanOrEqual(walAfterInsert);
  });

  it('a schema mismatch stops the daemon with a clear error and confirms nothing past the last write', async () => {
    const ch = await testClickHouse();
    const replication = await env.start();
    await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 0 })]);
    await replication.caughtUp();

    await ch.command({ query: `ALTER TABLE ${env.database}.task_runs_v2 DROP COLUMN ttl` });
    await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 1 })]);
    await expect(replication.running).rejects.toThrow(SinkFatalError);
    await expect(replication.running).rejects.toThrow(/rejected an insert of 1 rows .* restart/);
    // Idle keepalives may have moved the slot over other databases' WAL, never over the insert:
    // the slot still holds it.
    expect(await unconfirmedInSlot(env.pgdb.sql, replication.config.slot, 'I')).toBe(1);
  });
});
