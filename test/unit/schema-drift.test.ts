import { describe, expect, it } from 'vitest';
import { SOURCE_COLUMNS } from '../../src/schema/columns.ts';
import { checkRelation } from '../../src/transform/schema-drift.ts';

// The types sql/001_runs_tables.sql gives each kind of column.
const OID = { text: 25, int: 23, float: 701, bool: 16, timestamp: 1114, json: 3802, textArray: 1009 } as const;
const platform = SOURCE_COLUMNS.map((c) => ({ name: c.source, typeOid: c.source === 'status' ? 16_385 : OID[c.kind] }));

describe('schema drift', () => {
  it('accepts the platform schema (the status enum has its own oid)', () => {
    expect(checkRelation('TaskRun', platform)).toEqual({ unmapped: [], incompatible: [] });
  });

  it('reports added columns as unmapped and keeps going', () => {
    expect(checkRelation('TaskRun', [...platform, { name: 'extra', typeOid: 25 }])).toEqual({ unmapped: ['extra'], incompatible: [] });
  });

  it('refuses a dropped mapped column and a type that does not convert', () => {
    const dropped = platform.filter((c) => c.name !== 'costInCents');
    expect(checkRelation('TaskRun', dropped).incompatible).toEqual([
      expect.stringContaining('column "costInCents" of TaskRun (ClickHouse cost_in_cents) is gone'),
    ]);
    const retyped = platform.map((c) => (c.name === 'createdAt' ? { ...c, typeOid: 1184 } : c));
    expect(checkRelation('TaskRun', retyped).incompatible).toEqual([
      expect.stringContaining('column "createdAt" of TaskRun now has type oid 1184'),
    ]);
  });
});
