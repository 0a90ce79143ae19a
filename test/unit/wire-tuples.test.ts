import { PgoutputPlugin } from 'pg-logical-replication';
import { describe, expect, it } from 'vitest';
import { readTuplesFromWire, readWireTuple, textTupleOf } from '../../src/source/wire-tuples.ts';
import { prng } from '../support/fuzz.ts';
import { tupleData } from '../support/pgoutput.ts';

const relation = { columns: [{ name: 'id' }, { name: 'createdAt' }, { name: 'payload' }, { name: 'statusReason' }] };

describe('readWireTuple', () => {
  it('keeps every value as the text Postgres sent, NULL as null, and moves the reader past the tuple', () => {
    const bytes = Buffer.concat([
      Buffer.from('X'),
      tupleData(['run_ü€😀', '2026-03-04 05:06:07.123456', '{"a":1}', null]),
      Buffer.from('rest'),
    ]);
    const reader = { _b: bytes, _p: 1 };
    expect({ ...textTupleOf(readWireTuple(reader, relation)) }).toEqual({
      id: 'run_ü€😀',
      createdAt: '2026-03-04 05:06:07.123456',
      payload: '{"a":1}',
      statusReason: null,
    });
    expect(bytes.subarray(reader._p).toString()).toBe('rest');
  });

  it('takes an unchanged TOASTed value from the old tuple of the same message, or leaves it undefined', () => {
    // An update's message: the old tuple, then the new one with two values not sent.
    const oldData = tupleData(['run_1', '2026-01-01 00:00:00', 'old payload', undefined]);
    const bytes = Buffer.concat([oldData, tupleData(['run_1', '2026-01-01 00:00:00', undefined, undefined])]);
    const reader = { _b: bytes, _p: 0 };
    const old = readWireTuple(reader, relation);
    const tuple = textTupleOf(readWireTuple(reader, relation, old));
    expect(tuple.payload).toBe('old payload');
    expect(tuple.statusReason).toBeUndefined();
    expect(textTupleOf(readWireTuple({ _b: bytes, _p: oldData.length }, relation)).payload).toBeUndefined(); // without the old tuple
  });

  it('reads seeded mangled tuple data as values within the message, or refuses it with a pgoutput error', () => {
    const random = prng(23);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    let refused = 0;
    let read = 0;
    for (let round = 0; round < 3_000; round++) {
      const values = relation.columns.map(() => pick(['run_1', '', 'ü€😀', '{"a":"b\\c"}', null, undefined] as const));
      const bytes = Buffer.from(tupleData(values));
      // Flip bytes (kinds, lengths, the count), cut the end, or both.
      for (let flips = Math.floor(random() * 4); flips > 0; flips--)
        bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      const mangled = random() < 0.3 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes;
      const reader = { _b: mangled, _p: 0 };
      let tuple: ReturnType<typeof readWireTuple>;
      try {
        tuple = readWireTuple(reader, relation);
      } catch (error) {
        expect((error as Error).message).toMatch(/pgoutput/);
        refused += 1;
        continue;
      }
      read += 1;
      expect(reader._p).toBeLessThanOrEqual(mangled.length);
      for (let i = 0; i < relation.columns.length; i++) {
        const [start, length] = [tuple.cells[2 * i] as number, tuple.cells[2 * i + 1] as number];
        if (length >= 0) expect(start >= 0 && start + length <= reader._p).toBe(true);
      }
      expect(() => textTupleOf(tuple)).not.toThrow();
    }
    // Both outcomes happen: the seed reaches the refusals and the reads.
    expect(refused).toBeGreaterThan(300);
    expect(read).toBeGreaterThan(300);
  });

  it('refuses a truncated message instead of reading past its end', () => {
    const bytes = tupleData(['run_1', '2026-01-01 00:00:00', 'abc', null]);
    expect(() => readWireTuple({ _b: bytes.subarray(0, bytes.length - 6), _p: 0 }, relation)).toThrow(/unexpected end/);
  });

  it('is installed on the pinned library plugin, and a key-only old tuple reads as the key columns in text', () => {
    const plugin = readTuplesFromWire(new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] }));
    const parser = (plugin as unknown as { parser: { readTuple: unknown; readKeyTuple: (reader: unknown, relation: unknown) => unknown } })
      .parser;
    expect(parser.readTuple).toBe(readWireTuple);
    // A delete without FULL identity sends the key columns and NULL placeholders for the rest.
    const key = parser.readKeyTuple({ _b: tupleData(['run_ü', null, null, null]), _p: 0 }, { ...relation, keyColumns: ['id'] });
    expect({ ...(key as object) }).toEqual({ id: 'run_ü' });
  });
});
