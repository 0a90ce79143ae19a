/**
 * What runs-cdc's sessions pin whatever the server's profile says, checked on the engine (chDB
 * 26.7 defaults async_insert to 1). chDB keeps a SET on its connection for later requests, which
 * here stands in for a server profile's defaults.
 */
import { expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { QueryError, RunQueries } from '../../src/queries/run-queries.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { buildRow } from '../../src/transform/row.ts';
import { anotherClickHouse, usingClickHouseServer } from '../support/backends.ts';
import { freshClickHouseDatabase, queryRows, testClickHouse } from '../support/databases.ts';

const row = (id: string) =>
  buildRow(
    { id, createdAt: '2026-06-01 00:00:00.123', updatedAt: '2026-06-01 00:00:00.123', runTags: '{}', bulkActionGroupIds: '{}' },
    'task_run_v2',
    1n,
    false,
  );

it.skipIf(usingClickHouseServer())('inserts are synchronous under a profile with async_insert=1, wait_for_async_insert=0', async () => {
  const ch = await testClickHouse();
  const database = await freshClickHouseDatabase(ch);
  // A materialized view runs inside the INSERT, with its settings: it records what was in force.
  await ch.command({ query: `CREATE TABLE ${database}.insert_settings (async UInt8, wait UInt8) ENGINE = Memory` });
  await ch.command({
    query: `CREATE MATERIALIZED VIEW ${database}.insert_settings_mv TO ${database}.insert_settings AS
              SELECT getSetting('async_insert') AS async, getSetting('wait_for_async_insert') AS wait FROM ${database}.task_runs_v2`,
  });
  const writer = await anotherClickHouse();
  try {
    await writer.command({ query: 'SET async_insert = 1, wait_for_async_insert = 0' }); // the "profile"
    await new RunsTable(writer, database, { initialDelayMs: 10, maxDelayMs: 10, maxRetries: 0 }, silentLogger).write([row('run_1')]);
  } finally {
    await writer.close();
  }
  expect(await queryRows(ch, `SELECT async, wait FROM ${database}.insert_settings`)).toEqual([{ async: 0, wait: 1 }]);
});

it.skipIf(usingClickHouseServer())(
  'the run-list reader works under a readonly=2 profile; under readonly=1 it says what to change',
  async () => {
    const database = await freshClickHouseDatabase(await testClickHouse());
    const scope = { organizationId: 'o1', projectId: 'p1', environmentId: 'e1' };
    for (const [readonly, outcome] of [
      [2, 'works'],
      [1, 'refused'],
    ] as const) {
      const reader = await anotherClickHouse();
      try {
        await reader.command({ query: `SET readonly = ${readonly}` }); // the reading user's profile
        const queries = new RunQueries(reader, database, { timeoutSeconds: 10, maxMemoryBytes: 1e9 });
        if (outcome === 'works') expect(await queries.count(scope)).toBe(0);
        else {
          await expect(queries.count(scope)).rejects.toThrow(QueryError);
          await expect(queries.count(scope)).rejects.toThrow(
            /^the ClickHouse user has readonly=1, which forbids the per-query limits runs-cdc sets .*: give the reading user a profile with readonly=2$/,
          );
        }
      } finally {
        await reader.close();
      }
    }
  },
);
