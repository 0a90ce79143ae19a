import { PgoutputPlugin } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { readTextTuple, readTuplesAsText } from '../../src/source/text-tuples.ts';

/** pgoutput TupleData: Int16 count, then per column 't' Int32 length bytes | 'n' | 'u'. */
function tupleData(values: Array<string | null | 'UNCHANGED'>): Buffer {
  const parts: Buffer[] = [Buffer.from([0, values.length])];
  for (const value of values) {
    if (value === null) parts.push(Buffer.from('n'));
    else if (value === 'UNCHANGED') parts.push(Buffer.from('u'));
    else {
      const text = Buffer.from(value, 'utf8');
      const length = Buffer.alloc(4);
      length.writeInt32BE(text.length);
      parts.push(Buffer.from('t'), length, text);
    }
  }
  return Buffer.concat(parts);
}

const relation = { columns: [{ name: 'id' }, { name: 'createdAt' }, { name: 'payload' }, { name: 'statusReason' }] };

describe('readTextTuple', () => {
  it('keeps every value as the text Postgres sent, NULL as null, and moves the reader past the tuple', () => {
    const bytes = Buffer.concat([
      Buffer.from('X'),
      tupleData(['run_ü€😀', '2026-03-04 05:06:07.123456', '{"a":1}', null]),
      Buffer.from('rest'),
    ]);
    const reader = { _b: bytes, _p: 1 };
    expect({ ...readTextTuple(reader, relation) }).toEqual({
      id: 'run_ü€😀',
      createdAt: '2026-03-04 05:06:07.123456',
      payload: '{"a":1}',
      statusReason: null,
    });
    expect(bytes.subarray(reader._p).toString()).toBe('rest');
  });

  it('takes an unchanged TOASTed value from the fallback tuple, or leaves it undefined', () => {
    const bytes = tupleData(['run_1', '2026-01-01 00:00:00', 'UNCHANGED', 'UNCHANGED']);
    const tuple = readTextTuple({ _b: bytes, _p: 0 }, relation, { payload: 'old payload' });
    expect(tuple.payload).toBe('old payload');
    expect(tuple.statusReason).toBeUndefined();
  });

  it('refuses a truncated message instead of reading past its end', () => {
    const bytes = tupleData(['run_1', '2026-01-01 00:00:00', 'abc', null]);
    expect(() => readTextTuple({ _b: bytes.subarray(0, bytes.length - 6), _p: 0 }, relation)).toThrow(/unexpected end/);
  });

  it('is installed on the pinned library plugin', () => {
    const plugin = readTuplesAsText(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }));
    expect((plugin as unknown as { parser: { readTuple: unknown } }).parser.readTuple).toBe(readTextTuple);
  });
});
