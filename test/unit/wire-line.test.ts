import { describe, expect, it } from 'vitest';
import { SORT_KEY_SOURCE_COLUMNS, SOURCE_COLUMNS, type SourceTable } from '../../src/schema/columns.ts';
import { changeVersion } from '../../src/schema/version.ts';
import { encodeRow } from '../../src/sink/runs-sink.ts';
import { textTupleOf } from '../../src/source/wire-tuples.ts';
import { type Change, type Tuple, transformChange } from '../../src/transform/row.ts';
import { encodeWireChange, type WireChange } from '../../src/transform/wire-line.ts';
import { withLineText } from '../support/encoded.ts';
import { prng } from '../support/fuzz.ts';
import { HOSTILE_TEXTS } from '../support/hostile-values.ts';
import { wireTuples } from '../support/pgoutput.ts';

const version = changeVersion(0x1_0000_0000n, 3);

/** What the daemon writes for a change without the wire path: transformChange's rows, encoded. */
function rowPath(change: Change, table: SourceTable) {
  const result = transformChange(change, table, version);
  return {
    complete: !result.keyOnlyDelete && result.missingColumns.length === 0,
    rows: result.rows.map((row) => withLineText({ ...encodeRow(row), organizationId: String(row.organization_id) })),
    coercions: result.coercions,
  };
}

/** The change as the applier's row path sees it: the same tuples, as text. */
function textChange(wire: WireChange): Change {
  if (wire.kind === 'insert') return { kind: 'insert', new: textTupleOf(wire.new) };
  const old = wire.old && textTupleOf(wire.old);
  return wire.kind === 'update' ? { kind: 'update', old, new: textTupleOf(wire.new) } : { kind: 'delete', old, key: null };
}

function expectSameAsRowPath(wire: WireChange, table: SourceTable): boolean {
  const expected = rowPath(textChange(wire), table);
  const encoded = encodeWireChange(wire, table, version);
  // A change that needs the store's current row must not take the wire path.
  if (!expected.complete) expect(encoded).toBeUndefined();
  if (!encoded) return false;
  expect(encoded.rows.map(withLineText)).toEqual(expected.rows);
  expect(encoded.coercions).toEqual(expected.coercions);
  return true;
}

describe('the message bytes -> line encoder', () => {
  it('writes the same lines and coercions as the row path for seeded hostile tuples in any column order, and leaves incomplete changes to it', () => {
    const random = prng(16);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const tuple = (missing: number): Tuple => {
      const values: Record<string, string | null | undefined> = { extra: pick(HOSTILE_TEXTS.text) };
      for (const column of SOURCE_COLUMNS) {
        const roll = random();
        values[column.source] = roll < missing ? undefined : roll < 0.2 ? null : pick(HOSTILE_TEXTS[column.kind]);
      }
      return values;
    };
    // Postgres's column order is the table's, not the mapping's; a column runs-cdc does not map may sit anywhere.
    const names = [...SOURCE_COLUMNS.map((c) => c.source), 'extra'];
    let encoded = 0;
    const rounds = 1_500;
    for (let i = 0; i < rounds; i++) {
      const table = i % 2 === 0 ? 'task_run_v2' : 'TaskRun';
      const columns = (i % 7 === 0 ? [...names].sort(() => random() - 0.5) : names).map((name) => ({ name }));
      if (i % 11 === 0) columns.splice(Math.floor(random() * columns.length), 1); // the relation lacks a column
      const missing = i % 5 === 0 ? 0.02 : 0; // some values unchanged and not sent
      const old = tuple(missing);
      // An update mostly keeps the sort key; some move it.
      const next: Record<string, string | null | undefined> = { ...tuple(missing) };
      if (i % 3 !== 0) for (const key of SORT_KEY_SOURCE_COLUMNS) next[key] = old[key];
      if (i % 4 === 0) next.payload = undefined; // unchanged TOAST: taken from the old tuple
      const update = wireTuples(old, next, columns);
      const changes: WireChange[] = [
        { kind: 'insert', new: wireTuples(null, next, columns).new as never },
        { kind: 'update', old: update.old, new: update.new as never },
        { kind: 'update', old: null, new: wireTuples(null, next, columns).new as never },
        { kind: 'delete', old: wireTuples(old, null, columns).old },
        { kind: 'delete', old: null },
      ];
      for (const change of changes) if (expectSameAsRowPath(change, table)) encoded += 1;
    }
    // Most changes carry every value: the wire path must be the one taken for them.
    expect(encoded).toBeGreaterThan(rounds * 2.2);
  });

  it('takes the value of an unchanged TOASTed column from the old tuple', () => {
    const old: Tuple = Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, HOSTILE_TEXTS[c.kind][1] ?? null]));
    const { old: oldWire, new: newWire } = wireTuples(old, { ...old, output: undefined, status: 'EXECUTING' });
    const encoded = encodeWireChange({ kind: 'update', old: oldWire, new: newWire as never }, 'task_run_v2', version);
    expect(encoded?.rows).toHaveLength(1);
    const outputIndex = SOURCE_COLUMNS.findIndex((c) => c.source === 'output');
    expect(encoded?.rows[0]?.line.toString().split('\t')[outputIndex]).toBe('\\\\'); // old's '\' escaped
  });
});
