/**
 * `status` never says OK when something needs a person: an unreachable, unmigrated or
 * daemon-held ClickHouse, a slot nobody has consumed for too long or that keeps too much WAL, and
 * a dropped publication each exit 1 with the sentence that says what to do.
 */
import { beforeAll, expect, it } from 'vitest';
import { insertRuns, makeRun } from '../../src/demo/workload.ts';
import { usingClickHouseServer } from '../support/backends.ts';
import { cliWorkspace } from '../support/cli.ts';
import { uniqueName, waitForSlot } from '../support/databases.ts';

const workspace = cliWorkspace('status');

/** `runs-cdc status --json` with `env`: exit code, the report, everything printed. */
async function status(env: Record<string, string> = {}) {
  const run = await workspace.cli(['status', '--json'], env).finished();
  const report = JSON.parse(run.stdout) as {
    slot: { retainedWalBytes: number; inactiveSeconds: number | null };
    clickhouse: { available: boolean };
    problems: string[];
  };
  return { ...run, report };
}

/** A new slot (and its name) that has not seen the changes made before it. */
async function newSlot(): Promise<string> {
  const slot = uniqueName('slot');
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  return slot;
}

let index = 0;
async function writeRuns(count: number): Promise<void> {
  const runs = Array.from({ length: count }, () => makeRun({ table: 'task_run_v2', index: index++ }));
  await insertRuns(workspace.pgdb.sql, 'task_run_v2', runs);
}

beforeAll(async () => {
  const migrated = await workspace.cli(['migrate']).finished();
  expect(migrated.code, migrated.output).toBe(0);
  await workspace.pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [workspace.slot]);
});

it('healthy: exit 0 and no problems (the baseline every other case differs from in one thing)', async () => {
  const ok = await status();
  expect(ok.code, ok.output).toBe(0);
  expect(ok.report.problems).toEqual([]);
  expect(ok.report.clickhouse.available).toBe(true);
});

it('ClickHouse unreachable: exit 1 and the sentence', async () => {
  const run = await status({ CLICKHOUSE_URL: 'http://127.0.0.1:9' });
  expect(run.code).toBe(1);
  expect(run.report.problems).toEqual([
    expect.stringMatching(/^ClickHouse \(http:\/\/127\.0\.0\.1:9\/?\) is not reachable: .* check CLICKHOUSE_URL/),
  ]);
});

it('ClickHouse not migrated: exit 1 and says to run migrate', async () => {
  const run = await status({ CLICKHOUSE_DATABASE: uniqueName('unmigrated') });
  expect(run.code).toBe(1);
  expect(run.report.problems).toEqual([
    expect.stringMatching(/^ClickHouse database unmigrated_\w+ is missing migrations .*: run runs-cdc migrate$/),
  ]);
});

it.skipIf(usingClickHouseServer())('chDB held by a running daemon: exit 1, says to ask the daemon (--api-url) instead', async () => {
  const daemon = workspace.cli(['replicate']);
  try {
    await waitForSlot(workspace.pgdb.sql, workspace.slot, true);
    const run = await status();
    expect(run.code).toBe(1);
    expect(run.report.problems).toEqual([
      expect.stringContaining('is open in another process (chDB allows one; is runs-cdc replicate running?)'),
    ]);
    expect(run.report.problems[0]).toContain('--api-url');
  } finally {
    daemon.child.kill('SIGTERM');
    expect(await daemon.exit, daemon.output()).toBe(0);
  }
});

it('a slot with no consumer for longer than --slot-max-inactive-seconds: exit 1 and the sentence', async () => {
  const slot = await newSlot();
  await writeRuns(3);
  // Under the default threshold (10 min) the waiting change is no problem.
  const fresh = await status({ RUNS_CDC_SLOT: slot });
  expect(fresh.code, fresh.output).toBe(0);
  expect(fresh.report.slot.inactiveSeconds).toBeGreaterThanOrEqual(0);

  await new Promise((resolve) => setTimeout(resolve, 1_500));
  const stale = await status({ RUNS_CDC_SLOT: slot, RUNS_CDC_SLOT_MAX_INACTIVE_SECONDS: '1' });
  expect(stale.code).toBe(1);
  expect(stale.report.slot.inactiveSeconds).toBeGreaterThan(1);
  expect(stale.report.problems).toEqual([
    expect.stringMatching(
      new RegExp(
        `^replication slot ${slot} has had no consumer for \\d+ s \\(over --slot-max-inactive-seconds 1\\).*start runs-cdc replicate`,
      ),
    ),
  ]);
});

it('a slot retaining more WAL than --slot-max-retained-wal: exit 1 and the sentence', async () => {
  const slot = await newSlot();
  await writeRuns(200);
  const fine = await status({ RUNS_CDC_SLOT: slot });
  expect(fine.code, fine.output).toBe(0);
  const retained = fine.report.slot.retainedWalBytes;
  expect(retained).toBeGreaterThan(10_000);

  const over = await status({ RUNS_CDC_SLOT: slot, RUNS_CDC_SLOT_MAX_RETAINED_WAL: '10000' });
  expect(over.code).toBe(1);
  expect(over.report.problems).toEqual([
    expect.stringMatching(
      new RegExp(`^replication slot ${slot} retains [\\d.]+ KiB of WAL \\(over --slot-max-retained-wal 10000 bytes\\)`),
    ),
  ]);
});

it('a dropped publication: exit 1, and the slot cannot be revived by recreating it, as the sentence says', async () => {
  const { sql } = workspace.pgdb;
  const publication = uniqueName('pub');
  await sql.query(`CREATE PUBLICATION ${publication} FOR TABLE "TaskRun", task_run_v2`);
  const slot = await newSlot();
  await sql.query(`DROP PUBLICATION ${publication}`);
  await writeRuns(1);

  const run = await status({ RUNS_CDC_SLOT: slot, RUNS_CDC_PUBLICATION: publication });
  expect(run.code).toBe(1);
  expect(run.report.problems).toEqual([
    expect.stringMatching(
      new RegExp(
        `^publication ${publication} does not exist, and replication slot ${slot} cannot stream past the point it was dropped .*pg_drop_replication_slot.*replicate --recreate-slot .*$`,
      ),
    ),
  ]);

  // The sentence's reason: with the publication back, the slot still fails on the change made meanwhile.
  await sql.query(`CREATE PUBLICATION ${publication} FOR TABLE "TaskRun", task_run_v2`);
  await expect(
    sql.query(`SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`, [
      slot,
      publication,
    ]),
  ).rejects.toThrow(`publication "${publication}" does not exist`);
});

it('a missing slot while ClickHouse holds replicated rows: exit 1, says --recreate-slot (a new slot alone would leave a gap)', async () => {
  await writeRuns(3);
  const copied = await workspace.cli(['backfill']).finished();
  expect(copied.code, copied.output).toBe(0);
  const run = await status({ RUNS_CDC_SLOT: uniqueName('gone') });
  expect(run.code).toBe(1);
  expect(run.report.problems).toEqual([
    expect.stringMatching(/does not exist while ClickHouse holds replicated rows.*runs-cdc replicate --recreate-slot/),
  ]);
});

it('backfill --create-slot refuses a new slot once ClickHouse holds replicated rows (exit 2), naming replicate --recreate-slot', async () => {
  await writeRuns(1);
  const copied = await workspace.cli(['backfill']).finished(); // rows in ClickHouse, whatever ran before
  expect(copied.code, copied.output).toBe(0);
  const slot = uniqueName('fresh');
  const run = await workspace.cli(['backfill', '--create-slot'], { RUNS_CDC_SLOT: slot }).finished();
  expect(run.code, run.output).toBe(2);
  expect(run.output).toContain(`replication slot ${slot} does not exist, but ClickHouse already holds rows replicated from it`);
  expect(run.output).toContain('runs-cdc replicate --recreate-slot');
  expect(run.output).not.toMatch(/\n\s+at /);
  const { rows } = await workspace.pgdb.sql.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  expect(rows).toEqual([]); // no slot was made
});
