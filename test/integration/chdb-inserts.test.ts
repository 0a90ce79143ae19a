/**
 * Inserts through the embedded engine's connection go to it as bytes (src/sink/chdb-inserts.ts):
 * what lands is what was sent, byte for byte, however the body is cut; the session's settings and
 * an insert's own apply; a refused row is reported as ClickHouse reports it; inserts of another
 * shape still land. The same tests hold over HTTP against a server.
 */
import { Readable } from 'node:stream';
import { ClickHouseError } from '@clickhouse/client';
import { beforeAll, expect, it } from 'vitest';
import { classifyClickHouseError } from '../../src/sink/errors.ts';
import { queryRows, testClickHouse, uniqueName } from '../support/databases.ts';

let table = '';
beforeAll(async () => {
  const ch = await testClickHouse();
  const database = uniqueName('inserts');
  await ch.command({ query: `CREATE DATABASE ${database}` });
  table = `${database}.texts`;
  await ch.command({ query: `CREATE TABLE ${table} (n Int32, s String) ENGINE = MergeTree ORDER BY n` });
});

const rowsOf = async (n: number) => queryRows<{ s: string }>(await testClickHouse(), `SELECT s FROM ${table} WHERE n = ${n}`);
const rowCount = async () => (await queryRows<{ c: string }>(await testClickHouse(), `SELECT count() AS c FROM ${table}`))[0]?.c;

it('lands every byte of a body cut anywhere, inside a character too', async () => {
  const ch = await testClickHouse();
  const text = 'é€𝄞 ünïcödé, a tab\\t and a line\\n';
  const body = Buffer.from(`1\t${text}\n`, 'utf8');
  // One byte per chunk: every multi-byte character is cut.
  const chunks = [...body].map((byte) => Buffer.of(byte));
  await ch.insert({ table, values: Readable.from(chunks, { objectMode: false }), columns: ['n', 's'], format: 'TabSeparated' });
  expect(await rowsOf(1)).toEqual([{ s: 'é€𝄞 ünïcödé, a tab\t and a line\n' }]);
});

it("applies the session's settings and the insert's own", async () => {
  const ch = await testClickHouse();
  const values = [{ n: 2, s: 'two', unknown: 1 }];
  // The session refuses unknown fields (SESSION_SETTINGS); one insert may allow them.
  await expect(ch.insert({ table, values, format: 'JSONEachRow' })).rejects.toMatchObject({ code: '117', type: 'INCORRECT_DATA' });
  await ch.insert({ table, values, format: 'JSONEachRow', clickhouse_settings: { input_format_skip_unknown_fields: 1 } });
  expect(await rowsOf(2)).toEqual([{ s: 'two' }]);
});

it('reports a refused row as ClickHouse does: its code, and the rows to blame', async () => {
  const ch = await testClickHouse();
  const before = await rowCount();
  const refused = await ch
    .insert({
      table,
      values: Readable.from([Buffer.from('three\tx\n')], { objectMode: false }),
      columns: ['n', 's'],
      format: 'TabSeparated',
    })
    .then(
      () => undefined,
      (error: unknown) => error,
    );
  expect(refused).toBeInstanceOf(ClickHouseError);
  expect(classifyClickHouseError(refused)).toMatchObject({ transient: false, rowLevel: true });
  expect(await rowCount()).toBe(before);
});

it('lands inserts of another shape (an EXCEPT column list) and empty ones', async () => {
  const ch = await testClickHouse();
  await ch.insert({ table, values: [{ s: 'four' }], columns: { except: ['n'] }, format: 'JSONEachRow' });
  expect(await rowsOf(0)).toEqual([{ s: 'four' }]);
  const before = await rowCount();
  await ch.insert({ table, values: Readable.from([], { objectMode: false }), columns: ['n', 's'], format: 'TabSeparated' });
  expect(await rowCount()).toBe(before);
});
