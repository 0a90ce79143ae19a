/**
 * Runs for tests: build them (makeRun), write them (insertRuns), complete and delete them. Tests
 * import these from here, never from the demo: today this is the demo's generator
 * (src/demo/workload.ts) re-exported, and a test that needs another shape changes this file, so
 * the demo can change without touching a test.
 */
export {
  completeRuns,
  copyRunsToV2,
  deleteRuns,
  insertRuns,
  makeRun,
  type RunOptions,
  type RunRow,
  runId,
  STATUSES,
} from '../../src/demo/workload.ts';
