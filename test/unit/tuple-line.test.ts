import { describe, expect, it } from 'vitest';
import { SORT_KEY_SOURCE_COLUMNS, SOURCE_COLUMNS } from '../../src/schema/columns.ts';
import { changeVersion } from '../../src/schema/version.ts';
import { encodeRow } from '../../src/sink/runs-sink.ts';
import { type Change, type Tuple, transformChange } from '../../src/transform/row.ts';
import { encodeChange } from '../../src/transform/tuple-line.ts';
import { prng } from '../support/fuzz.ts';
import { HOSTILE_TEXTS } from '../support/hostile-values.ts';

const version = changeVersion(0x1_0000_0000n, 3);

/** What the daemon wrote before the compiled path: transformChange's rows, encoded. */
function rowPath(change: Change, table: 'TaskRun' | 'task_run_v2') {
  const result = transformChange(change, table, version);
  return {
    complete: !result.keyOnlyDelete && result.missingColumns.length === 0,
    rows: result.rows.map((row) => ({ ...encodeRow(row), organizationId: String(row.organization_id) })),
    coercions: result.coercions,
  };
}

function expectSameAsRowPath(change: Change, table: 'TaskRun' | 'task_run_v2'): boolean {
  const expected = rowPath(change, table);
  const compiled = encodeChange(change, table, version);
  // A change that needs the store's current row must not take the compiled path.
  if (!expected.complete) expect(compiled).toBeUndefined();
  if (!compiled) return false;
  expect(compiled.rows).toEqual(expected.rows);
  expect(compiled.coercions).toEqual(expected.coercions);
  return true;
}

describe('the compiled tuple -> line encoder', () => {
  it('writes the same lines and coercions as the row path for seeded hostile tuples, and leaves incomplete changes to it', () => {
    const random = prng(16);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const tuple = (missing: number): Tuple => {
      const values: Record<string, string | null | undefined> = {};
      for (const column of SOURCE_COLUMNS) {
        const roll = random();
        values[column.source] = roll < missing ? undefined : roll < 0.2 ? null : pick(HOSTILE_TEXTS[column.kind]);
      }
      return values;
    };
    let compiled = 0;
    const rounds = 1_500;
    for (let i = 0; i < rounds; i++) {
      const table = i % 2 === 0 ? 'task_run_v2' : 'TaskRun';
      const missing = i % 5 === 0 ? 0.02 : 0; // some changes lack a value (unchanged TOAST, no old row)
      const old = tuple(missing);
      // An update mostly keeps the sort key; some move it.
      const next: Record<string, string | null | undefined> = { ...tuple(missing) };
      if (i % 3 !== 0) for (const key of SORT_KEY_SOURCE_COLUMNS) next[key] = old[key];
      if (i % 4 === 0) next.payload = undefined; // unchanged TOAST: taken from the old row
      const changes: Change[] = [
        { kind: 'insert', new: next },
        { kind: 'update', old, new: next },
        { kind: 'update', old: null, new: next },
        { kind: 'delete', old, key: null },
        { kind: 'delete', old: null, key: { id: 'run_1' } },
      ];
      for (const change of changes) if (expectSameAsRowPath(change, table)) compiled += 1;
    }
    // Most changes carry every value: the compiled path must be the one taken for them.
    expect(compiled).toBeGreaterThan(rounds * 2.5);
  });

  it('takes the value of an unchanged TOASTed column from the old row', () => {
    const old: Tuple = Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, HOSTILE_TEXTS[c.kind][1] ?? null]));
    const compiled = encodeChange({ kind: 'update', old, new: { ...old, output: undefined, status: 'EXECUTING' } }, 'task_run_v2', version);
    expect(compiled?.rows).toHaveLength(1);
    const outputIndex = SOURCE_COLUMNS.findIndex((c) => c.source === 'output');
    expect(compiled?.rows[0]?.line.split('\t')[outputIndex]).toBe('\\\\'); // old's '\' escaped
  });
});
