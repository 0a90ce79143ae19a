import { describe, expect, it } from 'vitest';
import { SOURCE_COLUMNS, TARGET_COLUMNS } from '../../src/schema/columns.ts';
import { decodeRow, encodeRow, insertBody } from '../../src/sink/runs-sink.ts';
import { decodeTabSeparatedLine, encodeTabSeparatedLine } from '../../src/sink/tab-separated.ts';
import { buildRow } from '../../src/transform/row.ts';
import { HOSTILE_TEXTS } from '../support/hostile-values.ts';

/** Every character ClickHouse's TabSeparated or quoted-array rules treat specially, and some that they do not:
 * the shared hostile texts and the quoted-array delimiters on their own. */
const TRICKY = [...HOSTILE_TEXTS.text, "'", '[', ']', ','];

const columns = [
  { name: 's', type: 'String' },
  { name: 'ns', type: 'Nullable(String)' },
  { name: 'lc', type: 'LowCardinality(Nullable(String))' },
  { name: 'i', type: 'Int32' },
  { name: 'ni', type: 'Nullable(Int32)' },
  { name: 'f', type: 'Float64' },
  { name: 'b', type: 'Bool' },
  { name: 'nb', type: 'Nullable(Bool)' },
  { name: 'u8', type: 'UInt8' },
  { name: 'v', type: 'UInt128' },
  { name: 'a', type: 'Array(String)' },
];

describe('TabSeparated lines', () => {
  it('round-trip every special character, in fields and in array elements', () => {
    for (const text of TRICKY) {
      const row = {
        s: text,
        ns: text,
        lc: null,
        i: -2147483648,
        ni: null,
        f: -1.5e-7,
        b: true,
        nb: null,
        u8: 1,
        v: '340282366920938463463374607431768211455',
        a: [text, 'x', text],
      };
      const line = encodeTabSeparatedLine(row, columns);
      expect(line.split('\t')).toHaveLength(columns.length); // no raw tab or line feed leaks into a field
      expect(line).not.toMatch(/[\n\r]/);
      expect(decodeTabSeparatedLine(line, columns)).toEqual(row);
    }
  });

  it('write NULL as \\N and a string "\\N" escaped, so the two stay apart', () => {
    const line = encodeTabSeparatedLine({ s: '\\N', ns: null, a: [] }, columns.slice(0, 2).concat(columns.slice(-1)));
    expect(line).toBe('\\\\N\t\\N\t[]');
  });

  it('encode a built row the way ClickHouse reads it back, and decode it to the same row', () => {
    const row = buildRow(
      {
        id: 'run_1',
        createdAt: '2026-06-01 00:00:00.123',
        updatedAt: '2026-06-01 00:00:00.123',
        runTags: '{"a\\"b","c,d"}',
        bulkActionGroupIds: '{}',
        isTest: 't',
        costInCents: '1.25',
      },
      'TaskRun',
      7n,
      false,
    );
    const encoded = encodeRow(row);
    expect(encoded).toMatchObject({ sourceTable: 'TaskRun', deleted: false });
    expect(decodeRow(encoded)).toEqual(row);
  });

  it('round-trip a built row of every column type, for every hostile text of each type', () => {
    const longest = Math.max(...Object.values(HOSTILE_TEXTS).map((texts) => texts.length));
    for (let i = 0; i < longest; i++) {
      // Row i: every column holds the i-th hostile text of its kind (or NULL past the end).
      const tuple = Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, HOSTILE_TEXTS[c.kind][i] ?? null]));
      const row = buildRow(tuple, i % 2 === 0 ? 'task_run_v2' : 'TaskRun', 7n, i % 3 === 0);
      const encoded = encodeRow(row);
      expect(encoded.line.toString().split('\t')).toHaveLength(TARGET_COLUMNS.length);
      expect(encoded.line.toString()).not.toMatch(/[\n\r]/);
      // Through JSON: -0 (the int text '-0') is 0 in ClickHouse, as in the line.
      expect(decodeRow(encoded)).toEqual(JSON.parse(JSON.stringify(row)));
    }
  });

  it('make an insert body of the lines, each ended by a line feed', () => {
    const rows = ['a\tb', '\\N\tc'].map((line) => ({ line: Buffer.from(line), sourceTable: 'TaskRun', deleted: false, runId: 'r' }));
    expect(Buffer.concat(insertBody(rows)).toString()).toBe('a\tb\n\\N\tc\n');
    expect(Buffer.concat(insertBody(rows.slice(0, 1))).toString()).toBe('a\tb\n');
  });
});
