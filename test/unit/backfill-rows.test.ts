import { expect, it } from 'vitest';
import { rowsOfPage } from '../../src/backfill/source.ts';
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
