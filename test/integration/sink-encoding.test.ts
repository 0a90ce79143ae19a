/**
 * The sink's TabSeparated encoding, checked against ClickHouse's own parser: what RunsTable.write
 * sends is what ClickHouse stores, character for character, for every value that needs escaping.
 */
import { expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { buildRow, type ClickHouseRow } from '../../src/transform/row.ts';
import { freshClickHouseDatabase, queryRows, testClickHouse } from '../support/databases.ts';

const TRICKY = ['', '\\', '\\N', 'a\tb', 'a\nb', 'a\r\nb', "it's", "['x']", '\\t\\n', '\u0001\u001f\u007f', 'ü€😀', '{"k":"v\\"q"}'];

it('stores every special character exactly as written, in strings, nullable strings and arrays', async () => {
  const ch = await testClickHouse();
  const database = await freshClickHouseDatabase(ch);
  const rows: ClickHouseRow[] = TRICKY.map((text, i) => ({
    ...buildRow(
      {
        id: `run_${i}`,
        createdAt: '2026-06-01 00:00:00.123',
        updatedAt: '2026-06-01 00:00:00.123',
        runTags: '{}',
        bulkActionGroupIds: '{}',
      },
      'task_run_v2',
      BigInt(i + 1),
      false,
    ),
    payload: text,
    status_reason: text,
    idempotency_key: i % 2 === 0 ? null : text,
    region: i % 3 === 0 ? null : text, // LowCardinality(Nullable(String))
    tags: [text, 'x', text],
    bulk_action_group_ids: i % 2 === 0 ? [] : [text],
    cost_in_cents: -1.5e-7 * (i + 1),
    is_warm_start: i % 2 === 0 ? null : true,
  }));
  await new RunsTable(ch, database, { initialDelayMs: 10, maxDelayMs: 10, maxRetries: 0 }, silentLogger).write(rows);

  const stored = await queryRows<ClickHouseRow>(ch, `SELECT * FROM ${database}.task_runs_v2 ORDER BY _version`);
  expect(stored).toHaveLength(rows.length);
  for (const [i, row] of rows.entries()) {
    const back = stored[i] as ClickHouseRow;
    for (const column of [
      'payload',
      'status_reason',
      'idempotency_key',
      'region',
      'tags',
      'bulk_action_group_ids',
      'cost_in_cents',
      'is_warm_start',
      'run_id',
    ]) {
      expect(back[column], `${column} of ${JSON.stringify(TRICKY[i])}`).toEqual(row[column]);
    }
  }
});
