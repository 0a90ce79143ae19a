/**
 * Poison rows: a row ClickHouse refuses for its content (here a CHECK constraint) is found by
 * splitting the batch, kept in dead_letters with the error and its commit LSN, counted, and the
 * stream goes on; replay writes it once the cause is gone.
 */
import { expect, it } from 'vitest';
import { DeadLetters, replayDeadLetters } from '../../src/sink/dead-letters.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { freshEnvironmentPerTest } from '../support/daemon.ts';
import { liveRunCount, testClickHouse } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';

const env = freshEnvironmentPerTest();

it('dead-letters the refused rows of a batch, writes the rest, goes on, and replays them later', async () => {
  const ch = await testClickHouse();
  const table = `${env.database}.task_runs_v2`;
  await ch.command({ query: `ALTER TABLE ${table} ADD CONSTRAINT no_poison CHECK task_identifier != 'poison'` });
  const replication = await env.start({ batchRows: 1000 });
  const runs = Array.from({ length: 50 }, (_, i) => ({
    ...makeRun({ table: 'task_run_v2', index: i }),
    ...(i % 20 === 7 ? { taskIdentifier: 'poison' } : {}),
  }));
  await insertRuns(env.pgdb.sql, 'task_run_v2', runs); // one transaction, one batch
  await replication.caughtUp();
  const live = () => liveRunCount(ch, env.database);
  expect(await live()).toBe(47); // runs 7, 27 and 47 are poison
  expect(replication.table.stats.deadLetters).toBe(3);

  const letters = new DeadLetters(ch, env.database);
  const kept = await letters.list();
  expect(kept.map((l) => l.runId).sort()).toEqual([runs[7]?.id, runs[27]?.id, runs[47]?.id].sort());
  for (const letter of kept) {
    expect(letter.reason).toBe('VIOLATED_CONSTRAINT');
    expect(letter.error).toContain('no_poison');
    expect(letter.commitLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(letter.row.task_identifier).toBe('poison');
  }

  // The stream went on.
  await insertRuns(env.pgdb.sql, 'task_run_v2', [makeRun({ table: 'task_run_v2', index: 100 })]);
  await replication.caughtUp();
  expect(await live()).toBe(48);

  // While the cause remains, replay refuses and keeps them; once it is gone, they land.
  const strict = new RunsTable(ch, env.database, { initialDelayMs: 10, maxDelayMs: 10, maxRetries: 0 }, replication.table.retryContext.log);
  const write = (rows: Parameters<RunsTable['write']>[0]) => strict.write(rows);
  expect((await replayDeadLetters(letters, write)).refused).toHaveLength(3);
  await ch.command({ query: `ALTER TABLE ${table} DROP CONSTRAINT no_poison` });
  expect(await replayDeadLetters(letters, write)).toEqual({ replayed: 3, refused: [] });
  expect(await live()).toBe(51);
  expect(await letters.list()).toEqual([]);
});
