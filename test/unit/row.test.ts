import { describe, expect, it } from 'vitest';
import { SOURCE_COLUMNS, TARGET_COLUMNS } from '../../src/schema/columns.ts';
import {
  BACKFILL_VERSION,
  changeVersion,
  LEGACY_SUPERSEDED_VERSION,
  rankedVersion,
  snapshotVersion,
  versionCommitLsn,
} from '../../src/schema/version.ts';
import { type Tuple, tombstoneOf, transformChange } from '../../src/transform/row.ts';

const base: Tuple = {
  id: 'run_1',
  number: '7',
  friendlyId: 'run_abc',
  status: 'EXECUTING',
  createdAt: '2026-01-02 03:04:05.678',
  updatedAt: '2026-01-02 03:04:06.000',
  organizationId: 'org_1',
  projectId: 'proj_1',
  runtimeEnvironmentId: 'env_1',
  payload: 'P'.repeat(10),
  output: '{"ok":true}',
  runTags: '{a,b}',
  isTest: 'f',
  costInCents: '1.25',
};
const v1 = changeVersion(0x1_0000_0000n, 1);

describe('inserts', () => {
  it('map every source column to its target, plus source table, version and live flag', () => {
    const { rows, coercions, missingColumns } = transformChange({ kind: 'insert', new: base }, 'TaskRun', v1);
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(Object.keys(row)).toEqual(TARGET_COLUMNS.map((c) => c.name));
    expect(row).toMatchObject({
      run_id: 'run_1',
      number: 7,
      created_at: '2026-01-02 03:04:05.678',
      tags: ['a', 'b'],
      is_test: false,
      cost_in_cents: 1.25,
      source_table: 'TaskRun',
      _version: v1.toString(),
      _is_deleted: 0,
    });
    expect(coercions).toEqual([]);
    // Columns absent from the tuple are reported, never silently nulled.
    expect(missingColumns.length).toBe(SOURCE_COLUMNS.length - Object.keys(base).length);
  });
});

describe('updates', () => {
  it('take unchanged TOASTed values from the old tuple', () => {
    const next = { ...base, status: 'COMPLETED_SUCCESSFULLY', payload: undefined, output: undefined };
    const { rows } = transformChange({ kind: 'update', old: base, new: next }, 'task_run_v2', v1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'COMPLETED_SUCCESSFULLY', payload: base.payload, output: base.output });
  });

  it('without an old tuple, report the values they did not carry', () => {
    const full = Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, base[c.source] ?? null]));
    const { missingColumns } = transformChange({ kind: 'update', old: null, new: { ...full, payload: undefined } }, 'task_run_v2', v1);
    expect(missingColumns).toEqual(['payload']);
  });

  it('that move the sort key tombstone the old key first', () => {
    const next = { ...base, createdAt: '2025-12-31 00:00:00.000', projectId: 'proj_2' };
    const { rows } = transformChange({ kind: 'update', old: base, new: next }, 'TaskRun', v1);
    expect(rows.map((r) => [r.project_id, r.created_at, r._is_deleted])).toEqual([
      ['proj_1', '2026-01-02 03:04:05.678', 1],
      ['proj_2', '2025-12-31 00:00:00.000', 0],
    ]);
  });

  it('that keep the sort key write one row', () => {
    const { rows } = transformChange({ kind: 'update', old: base, new: { ...base, status: 'CRASHED' } }, 'TaskRun', v1);
    expect(rows).toHaveLength(1);
  });
});

describe('deletes', () => {
  it('become a tombstone carrying the whole old row', () => {
    const { rows } = transformChange({ kind: 'delete', old: base, key: null }, 'TaskRun', v1);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ run_id: 'run_1', organization_id: 'org_1', created_at: '2026-01-02 03:04:05.678', _is_deleted: 1 });
  });

  it('with only the key are reported for lookup', () => {
    const result = transformChange({ kind: 'delete', old: null, key: { id: 'run_1' } }, 'TaskRun', v1);
    expect(result.rows).toEqual([]);
    expect(result.keyOnlyDelete).toEqual({ id: 'run_1' });
  });
});

describe('versions', () => {
  it('order by commit LSN first, then by the change within the transaction', () => {
    expect(changeVersion(10n, 2)).toBeGreaterThan(changeVersion(10n, 1));
    expect(changeVersion(11n, 1)).toBeGreaterThan(changeVersion(10n, 1_000_000));
    expect(versionCommitLsn(changeVersion(0x7fff_ffff_ffff_ffffn, 3))).toBe(0x7fff_ffff_ffff_ffffn);
    expect(versionCommitLsn(rankedVersion('task_run_v2', changeVersion(0x1234n, 3)))).toBe(0x1234n);
  });

  it('rank every task_run_v2 row above every "TaskRun" row, and keep the LSN order within a table', () => {
    const legacyLatest = rankedVersion('TaskRun', changeVersion(0x7fff_ffff_ffff_ffffn, 1_000_000));
    for (const v2 of [BACKFILL_VERSION, snapshotVersion(1n), changeVersion(1n, 1)]) {
      expect(rankedVersion('task_run_v2', v2)).toBeGreaterThan(LEGACY_SUPERSEDED_VERSION);
    }
    expect(LEGACY_SUPERSEDED_VERSION).toBeGreaterThan(legacyLatest);
    expect(rankedVersion('task_run_v2', changeVersion(11n, 1))).toBeGreaterThan(rankedVersion('task_run_v2', changeVersion(10n, 2)));
    expect(rankedVersion('TaskRun', changeVersion(10n, 1))).toBe(changeVersion(10n, 1));
  });

  it('are carried ranked by every row built for task_run_v2: live rows, moved-key and delete tombstones', () => {
    const moved = transformChange({ kind: 'update', old: base, new: { ...base, createdAt: '2026-01-03 00:00:00' } }, 'task_run_v2', v1);
    const deleted = transformChange({ kind: 'delete', old: base, key: null }, 'task_run_v2', v1);
    for (const row of [...moved.rows, ...deleted.rows]) expect(row._version).toBe(rankedVersion('task_run_v2', v1).toString());
    expect(tombstoneOf(moved.rows[1]!, changeVersion(0x2_0000_0000n, 1))._version).toBe(
      rankedVersion('task_run_v2', changeVersion(0x2_0000_0000n, 1)).toString(),
    );
  });

  it('refuse an LSN that would reach the table rank', () => {
    expect(() => changeVersion(1n << 63n, 1)).toThrow(RangeError);
  });

  it('every replicated version is above the backfill version', () => {
    expect(changeVersion(0n, 1)).toBeGreaterThan(BACKFILL_VERSION);
  });

  it('reject ordinals that would collide', () => {
    expect(() => changeVersion(1n, 0)).toThrow(RangeError);
  });
});
