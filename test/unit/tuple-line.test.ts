import { describe, expect, it } from 'vitest';
import { SOURCE_COLUMNS } from '../../src/schema/columns.ts';
import { changeVersion } from '../../src/schema/version.ts';
import { encodeRow } from '../../src/sink/runs-sink.ts';
import type { RoutedEncodedRow } from '../../src/sink/targets.ts';
import { buildRow, type Tuple } from '../../src/transform/row.ts';
import { encodeTupleLine } from '../../src/transform/tuple-line.ts';
import type { Coercion } from '../../src/transform/values.ts';
import { withLineText } from '../support/encoded.ts';
import { prng } from '../support/fuzz.ts';
import { HOSTILE_TEXTS } from '../support/hostile-values.ts';

const version = changeVersion(0x1_0000_0000n, 3);

describe('the compiled tuple -> line encoder (the backfill path)', () => {
  it('writes the same line and coercions as the row path for seeded hostile tuples, and leaves incomplete tuples to it', () => {
    const random = prng(16);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    let compiled = 0;
    const rounds = 3_000;
    for (let i = 0; i < rounds; i++) {
      const table = i % 2 === 0 ? 'task_run_v2' : 'TaskRun';
      const missing = i % 5 === 0 ? 0.02 : 0; // some tuples lack a value
      const tuple: Record<string, string | null | undefined> = {};
      for (const column of SOURCE_COLUMNS) {
        const roll = random();
        tuple[column.source] = roll < missing ? undefined : roll < 0.2 ? null : pick(HOSTILE_TEXTS[column.kind]);
      }
      const coercions: Coercion[] = [];
      const encoded = encodeTupleLine(tuple as Tuple, table, version, coercions);
      if (Object.values(tuple).includes(undefined)) {
        expect(encoded).toBeUndefined();
        continue;
      }
      const expectedCoercions: Coercion[] = [];
      const row = buildRow(tuple as Tuple, table, version, false, expectedCoercions);
      expect(withLineText(encoded as RoutedEncodedRow)).toEqual(
        withLineText({ ...encodeRow(row), organizationId: String(row.organization_id) }),
      );
      expect(coercions).toEqual(expectedCoercions);
      compiled += 1;
    }
    expect(compiled).toBeGreaterThan(rounds * 0.7);
  });
});
