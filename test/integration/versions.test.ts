/**
 * The version rule in real ClickHouse, through the real transform and sink: what survives when
 * the same changes are written again, as they are after a crash (delivery is at-least-once).
 */
import { expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { SOURCE_COLUMNS } from '../../src/schema/columns.ts';
import { BACKFILL_VERSION, changeVersion } from '../../src/schema/version.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { type Tuple, transformChange } from '../../src/transform/row.ts';
import { freshClickHouseDatabase, queryRows, testClickHouse } from '../support/databases.ts';

const run: Tuple = {
  ...Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, null])),
  id: 'run_1',
  number: '1',
  friendlyId: 'run_abc',
  status: 'PENDING',
  createdAt: '2026-11-01 00:00:00.000',
  updatedAt: '2026-11-01 00:00:00.000',
  organizationId: 'org_1',
  projectId: 'proj_1',
  runtimeEnvironmentId: 'env_1',
  runTags: '{}',
  bulkActionGroupIds: '{}',
};

async function table(): Promise<RunsTable> {
  const ch = await testClickHouse();
  return new RunsTable(ch, await freshClickHouseDatabase(ch), { initialDelayMs: 10, maxDelayMs: 10 }, silentLogger);
}

async function finalStatus(runs: RunsTable): Promise<string | undefined> {
  const rows = await queryRows<{ status: string }>(runs.client, `SELECT status FROM ${runs.qualifiedName} FINAL WHERE _is_deleted = 0`);
  return rows.length === 1 ? rows[0]?.status : `${rows.length} rows`;
}

const update = (status: string, commitLsn: bigint, ordinal: number) =>
  transformChange({ kind: 'update', old: run, new: { ...run, status } }, 'task_run_v2', changeVersion(commitLsn, ordinal)).rows;

it('a replayed earlier change of a transaction does not overwrite a later one', async () => {
  const runs = await table();
  // One transaction: EXECUTING, then COMPLETED. Written once, then the first change again, as a
  // restart replays everything after the last confirmed commit.
  await runs.write([...update('EXECUTING', 0x100n, 1), ...update('COMPLETED_SUCCESSFULLY', 0x100n, 2)]);
  await runs.write(update('EXECUTING', 0x100n, 1));
  expect(await finalStatus(runs)).toBe('COMPLETED_SUCCESSFULLY');
});

it('a replayed older transaction does not overwrite a newer one', async () => {
  const runs = await table();
  await runs.write(update('EXECUTING', 0x100n, 1));
  await runs.write(update('CRASHED', 0x200n, 1));
  await runs.write(update('EXECUTING', 0x100n, 1));
  expect(await finalStatus(runs)).toBe('CRASHED');
});

it('a backfilled copy written after a replicated change never wins', async () => {
  const runs = await table();
  await runs.write(update('COMPLETED_SUCCESSFULLY', 0x100n, 1));
  await runs.write(transformChange({ kind: 'insert', new: run }, 'task_run_v2', BACKFILL_VERSION).rows);
  expect(await finalStatus(runs)).toBe('COMPLETED_SUCCESSFULLY');
});
