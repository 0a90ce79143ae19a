import { describe, expect, it } from 'vitest';
import { SORT_KEY_SOURCE_COLUMNS, SOURCE_COLUMNS, type SourceTable } from '../../src/schema/columns.ts';
import { changeVersion } from '../../src/schema/version.ts';
import { encodeRow } from '../../src/sink/runs-sink.ts';
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

/**
 * A change to both paths: the wire path reads it from pgoutput bytes written with `columns` (a
 * column the relation lacks is not sent); the row path takes the source tuples themselves, with
 * what is not sent as undefined, and merges unchanged values from the old row its own way.
 */
function bothPaths(
  kind: WireChange['kind'],
  old: Tuple | null,
  next: Tuple | null,
  columns: ReadonlyArray<{ name: string }>,
): { wire: WireChange; change: Change; full: boolean } {
  const names = new Set(columns.map((c) => c.name));
  const sent = (tuple: Tuple): Tuple =>
    Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, names.has(c.source) ? tuple[c.source] : undefined]));
  // Whether a tuple carries every mapped column (an update's new one: or its old one does).
  const carriesAll = (tuple: Tuple | null, fallback: Tuple | null = null) =>
    tuple !== null &&
    SOURCE_COLUMNS.every((c) => sent(tuple)[c.source] !== undefined || (fallback !== null && sent(fallback)[c.source] !== undefined));
  const tuples = wireTuples(old, next, columns);
  switch (kind) {
    case 'insert':
      return { wire: { kind, new: tuples.new as never }, change: { kind, new: sent(next as Tuple) }, full: carriesAll(next) };
    case 'update':
      return {
        wire: { kind, old: tuples.old, new: tuples.new as never },
        change: { kind, old: old && sent(old), new: sent(next as Tuple) },
        full: carriesAll(next, old) && (old === null || carriesAll(old)),
      };
    case 'delete':
      return {
        wire: { kind, old: tuples.old },
        change: { kind, old: old && sent(old), key: old ? null : { id: 'run_1' } },
        full: carriesAll(old),
      };
  }
}

/**
 * The wire path writes exactly the row path's lines and coercions; it is taken for every change
 * whose tuples carry all their values, and never for one that needs the store's current row.
 */
function expectSameAsRowPath({ wire, change, full }: ReturnType<typeof bothPaths>, table: SourceTable): boolean {
  const expected = rowPath(change, table);
  const encoded = encodeWireChange(wire, table, version);
  if (!expected.complete) expect(encoded).toBeUndefined();
  if (full) expect(encoded).toBeDefined();
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
      const changes = [
        bothPaths('insert', null, next, columns),
        bothPaths('update', old, next, columns),
        bothPaths('update', null, next, columns),
        bothPaths('delete', old, null, columns),
        bothPaths('delete', null, null, columns),
      ];
      for (const change of changes) if (expectSameAsRowPath(change, table)) encoded += 1;
    }
    // Most changes carry every value: the wire path must be the one taken for them.
    expect(encoded).toBeGreaterThan(rounds * 2.2);
  });

  it('takes the value of an unchanged TOASTed column from the old tuple', () => {
    // Every text column its own value, so taking another column's would show.
    const old: Tuple = Object.fromEntries(
      SOURCE_COLUMNS.map((c) => [c.source, c.kind === 'text' || c.kind === 'json' ? `${c.source} \\` : (HOSTILE_TEXTS[c.kind][0] ?? null)]),
    );
    const { old: oldWire, new: newWire } = wireTuples(old, { ...old, output: undefined, status: 'EXECUTING' });
    const encoded = encodeWireChange({ kind: 'update', old: oldWire, new: newWire as never }, 'task_run_v2', version);
    expect(encoded?.rows).toHaveLength(1);
    const outputIndex = SOURCE_COLUMNS.findIndex((c) => c.source === 'output');
    expect(encoded?.rows[0]?.line.toString().split('\t')[outputIndex]).toBe('output \\\\'); // old's value, its '\' escaped
  });
});
