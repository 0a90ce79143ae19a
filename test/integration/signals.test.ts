/**
 * The README's own command for the daemon, started as a supervisor starts it (its argv, no shell),
 * and stopped as a supervisor stops it: one SIGTERM to the process that command started. The
 * signal must reach the daemon, which flushes, confirms and exits 0. (`npx runs-cdc replicate`
 * fails this: npm exits at once and the daemon lives on, orphaned, holding the slot.)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { expect, it } from 'vitest';
import { insertRuns, makeRun } from '../../src/demo/workload.ts';
import { currentWalLsn } from '../../src/source/catalog.ts';
import { CLI_DATABASE, cliClickHouse, cliClickHouseEnv } from '../support/backends.ts';
import { cliWorkspace } from '../support/cli.ts';
import { liveRunCount, slotConfirmedLsn, unconfirmedInSlot, waitFor, waitForSlot } from '../support/databases.ts';

const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const workspace = cliWorkspace('signals');

/** The shell lines of the README's "Against real servers" block, comments removed. */
function readmeServerCommands(): string[] {
  const readme = readFileSync(`${REPO}/README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Against real servers'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

/** `export PATH="…"` as a shell in the checkout would expand it. */
function readmePath(lines: string[]): string {
  const line = lines.find((l) => l.startsWith('export PATH='));
  if (!line) return process.env.PATH ?? '';
  return line
    .slice('export PATH='.length)
    .replace(/^"|"$/g, '')
    .replaceAll('$PWD', REPO)
    .replaceAll('$PATH', process.env.PATH ?? '')
    .replaceAll(':', delimiter);
}

it("SIGTERM to the process the README's replicate command starts stops the daemon cleanly: exit 0, everything confirmed", async () => {
  const lines = readmeServerCommands();
  const command = lines.find((l) => /(^|\s)replicate$/.test(l));
  expect(command, 'the README names a replicate command').toBeDefined();
  const [file, ...args] = command!.split(/\s+/) as [string, ...string[]];

  const migrate = workspace.cli(['migrate']);
  expect(await migrate.exit, migrate.output()).toBe(0);

  const env = {
    ...process.env,
    PATH: readmePath(lines),
    DATABASE_URL: workspace.pgdb.url,
    ...cliClickHouseEnv(workspace.chdbPath),
    RUNS_CDC_SLOT: workspace.slot,
    LOG_LEVEL: 'info',
  };
  const daemon = spawn(file, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  daemon.stdout.on('data', (d) => (output += d));
  daemon.stderr.on('data', (d) => (output += d));
  const exit = new Promise<number | null>((resolve) => daemon.once('close', (code) => resolve(code)));

  await waitForSlot(workspace.pgdb.sql, workspace.slot, true);
  await insertRuns(
    workspace.pgdb.sql,
    'task_run_v2',
    Array.from({ length: 20 }, (_, index) => makeRun({ table: 'task_run_v2', index })),
  );
  const walEnd = await currentWalLsn(workspace.pgdb.sql);
  await waitFor('the daemon to confirm the inserts', async () => (await slotConfirmedLsn(workspace.pgdb.sql, workspace.slot)) >= walEnd);

  daemon.kill('SIGTERM');
  expect(await exit, output).toBe(0);
  expect(output).toContain('stopped cleanly');
  // Released (nobody holds the slot any more) and nothing left unconfirmed in it.
  expect(await unconfirmedInSlot(workspace.pgdb.sql, workspace.slot, 'I')).toBe(0);
  const ch = await cliClickHouse(workspace.chdbPath);
  try {
    expect(await liveRunCount(ch, CLI_DATABASE)).toBe(20);
  } finally {
    await ch.close();
  }
});
