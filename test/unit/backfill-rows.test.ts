import { expect, it } from 'vitest';
import { rowsOfPage } from '../../src/backfill/source.ts';
import { LEGACY_SUPERSEDED_VERSION, rankedVersion } from '../../src/schema/version.ts';
import { capturingLogger } from '../support/logs.ts';

it('rows of a page: a value that had to be coerced is stored NULL and logged with its table and column', () => {
  const { log, lines } = capturingLogger();
  const tuple = {
    id: 'run_1',
    createdAt: '2026-06-01 00:00:00',
    updatedAt: '2026-06-01 00:00:00',
    startedAt: 'infinity',
    runTags: '{}',
    bulkActionGroupIds: '{}',
  };
  const [row] = rowsOfPage([tuple], 'TaskRun', 7n, log);
  expect(row).toMatchObject({ run_id: 'run_1', started_at: null, _version: '7' });
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0] as string)).toMatchObject({ table: 'TaskRun', column: 'startedAt', value: 'infinity' });
});

it('rows of a page: task_run_v2 rows carry the table rank; a legacy row read while its run has a v2 copy becomes a superseding tombstone', () => {
  const { log } = capturingLogger();
  const tuple = {
    id: 'run_1',
    createdAt: '2026-06-01 00:00:00',
    updatedAt: '2026-06-01 00:00:00',
    runTags: '{}',
    bulkActionGroupIds: '{}',
  };
  expect(rowsOfPage([tuple], 'task_run_v2', 7n, log)[0]).toMatchObject({
    _version: rankedVersion('task_run_v2', 7n).toString(),
    _is_deleted: 0,
  });
  const [legacy, migrated] = rowsOfPage(
    [
      { ...tuple, __migrated: 'f' },
      { ...tuple, id: 'run_2', __migrated: 't' },
    ],
    'TaskRun',
    7n,
    log,
  );
  expect(legacy).toMatchObject({ run_id: 'run_1', _version: '7', _is_deleted: 0 });
  expect(migrated).toMatchObject({
    run_id: 'run_2',
    created_at: '2026-06-01 00:00:00.000',
    _version: LEGACY_SUPERSEDED_VERSION.toString(),
    _is_deleted: 1,
  });
});
