/** The backfill, run in the test process against real Postgres and ClickHouse, and the check
 * that ClickHouse holds exactly what Postgres holds. */
import type { ClickHouseClient } from '@clickhouse/client';
import { expect } from 'vitest';
import { CheckpointStore } from '../../src/backfill/checkpoints.ts';
import { type BackfillContext, backfillRequest } from '../../src/backfill/job.ts';
import { connectReader, SELECT_LIST } from '../../src/backfill/source.ts';
import { BACKFILL_PROFILES, type BackfillTuning } from '../../src/config.ts';
import { armFailpoint, type FailpointName, type Failpoints } from '../../src/failpoints.ts';
import { silentLogger } from '../../src/logger.ts';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { hasV2Copy } from '../../src/schema/version.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { quoteIdent } from '../../src/source/catalog.ts';
import { buildRow } from '../../src/transform/row.ts';
import { queryRows, type TestPostgres } from './databases.ts';

const RETRY = { initialDelayMs: 20, maxDelayMs: 100, maxRetries: 2 };

export { backfillRequest };

export function backfillContext(
  pgdb: TestPostgres,
  ch: ClickHouseClient,
  database: string,
  overrides: Partial<Omit<BackfillContext, 'tuning'>> & { tuning?: Partial<BackfillTuning> } = {},
): BackfillContext {
  const { tuning, ...rest } = overrides;
  return {
    databaseUrl: pgdb.url,
    slot: 'runs_cdc',
    publication: 'runs_cdc',
    runsTable: new RunsTable(ch, database, RETRY, silentLogger),
    store: new CheckpointStore(ch, database, RETRY, silentLogger),
    log: silentLogger,
    ...rest,
    tuning: { ...BACKFILL_PROFILES.default, ...tuning },
  };
}

/** Run `body` with failpoint `name` armed (see src/failpoints.ts); disarmed however it ends. */
export async function withFailpoint<Name extends FailpointName, T>(
  name: Name,
  action: Failpoints[Name],
  body: () => Promise<T>,
): Promise<T> {
  const disarm = armFailpoint(name, action);
  try {
    return await body();
  } finally {
    disarm();
  }
}

type Row = Record<string, unknown>;
const key = (r: Row) => `${r.source_table}/${r.run_id}`;
const byKey = (a: Row, b: Row) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** Every live run in ClickHouse (FINAL, tombstones hidden) equals its Postgres row, column for
 * column through the one mapping, and there is no other. Returns the number of runs.
 * One run, two tables: a "TaskRun" row whose id is in task_run_v2 is not a run of its own (the v2
 * copy is), nor is one in `deletedThroughV2` (its v2 copy was deleted, so the run was). */
export async function expectClickHouseEqualsPostgres(
  pgdb: TestPostgres,
  ch: ClickHouseClient,
  database: string,
  deletedThroughV2: Iterable<string> = [],
): Promise<number> {
  const reader = await connectReader(pgdb.url);
  const expected: Row[] = [];
  const retired = new Set(deletedThroughV2);
  try {
    for (const table of SOURCE_TABLES) {
      const rule = table === 'TaskRun' ? `WHERE NOT ${hasV2Copy()}` : '';
      const { rows } = await reader.query<Record<string, string | null>>(`SELECT ${SELECT_LIST} FROM ${quoteIdent(table)} ${rule}`);
      for (const tuple of rows) {
        if (table === 'TaskRun' && retired.has(String(tuple.id))) continue;
        const row: Row = buildRow(tuple, table, 0n, false);
        delete row._version;
        expected.push(row);
      }
    }
  } finally {
    await reader.end();
  }
  const actual = await queryRows<Row>(ch, `SELECT * EXCEPT _version FROM ${database}.task_runs_v2 FINAL WHERE _is_deleted = 0`);
  expect(actual.length).toBe(expected.length);
  expect(actual.sort(byKey)).toEqual(expected.sort(byKey));
  return actual.length;
}

/** Rows of the table (tombstones included) per run under FINAL: 1 for every run. */
export async function maxRowsPerRun(ch: ClickHouseClient, database: string): Promise<number> {
  const [row] = await queryRows<{ n: string }>(
    ch,
    `SELECT max(c) AS n FROM (SELECT count() AS c FROM ${database}.task_runs_v2 FINAL GROUP BY source_table, run_id)`,
  );
  return Number(row?.n ?? 0);
}
