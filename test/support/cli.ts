/** The real `runs-cdc` binary as a child process, for tests of process-level behaviour. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { CLI_DATABASE, cliClickHouseEnv } from './backends.ts';
import { freshPostgres, type TestPostgres, uniqueName } from './databases.ts';

const CLI = join(import.meta.dirname, '../../bin/runs-cdc.js');

export interface CliProcess {
  child: ChildProcess;
  /** Exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  /** Everything printed so far, stdout and stderr. */
  output(): string;
  /** Exit code, everything printed, and stdout alone (the command's output, without logs), once it has exited. */
  finished(): Promise<{ code: number | null; output: string; stdout: string }>;
}

/** Run `runs-cdc <args>` with the given environment added to this process's. */
export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  child.stdout?.on('data', (d) => {
    output += d;
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  // 'close', not 'exit': it comes once stdout and stderr are drained too, so output() is complete.
  const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, exit, output: () => output, finished: async () => ({ code: await exit, output, stdout }) };
}

export interface CliWorkspace {
  /** The test file's Postgres database (set before its tests run). */
  pgdb: TestPostgres;
  /** The chDB directory its runs-cdc processes share (open it here only once they have exited). */
  readonly chdbPath: string;
  readonly slot: string;
  /** `runs-cdc <args>` against this workspace, with `env` added. */
  cli(args: string[], env?: Record<string, string>): CliProcess;
  /**
   * A second ClickHouse database, migrated, as the --routes target `name` for `organization`:
   * its database name and the environment that routes the organization there.
   */
  routedTarget(name: string, organization: string): Promise<{ database: string; env: Record<string, string> }>;
}

/**
 * A database, a chDB directory and a slot name for one test file's `runs-cdc` child processes,
 * created before the file's tests and removed after them. `env` goes to every process; `postgres`
 * makes the database (default: a fresh one on the run's server).
 */
export function cliWorkspace(
  name: string,
  env: Record<string, string> = {},
  postgres: () => Promise<TestPostgres> = () => freshPostgres(),
): CliWorkspace {
  const chdbPath = mkdtempSync(join(tmpdir(), `runs-cdc-${name}-`));
  const slot = uniqueName('slot');
  const workspace: CliWorkspace = {
    pgdb: undefined as unknown as TestPostgres,
    chdbPath,
    slot,
    cli: (args, extra = {}) =>
      runCli(args, { DATABASE_URL: workspace.pgdb.url, ...cliClickHouseEnv(chdbPath), RUNS_CDC_SLOT: slot, ...env, ...extra }),
    routedTarget: async (name, organization) => {
      const database = `${CLI_DATABASE}_${name}`;
      const migrated = await workspace.cli(['migrate'], { CLICKHOUSE_DATABASE: database }).finished();
      if (migrated.code !== 0) throw new Error(`migrate ${database} failed: ${migrated.output}`);
      const routes = { targets: { [name]: { database } }, organizations: { [organization]: name } };
      return { database, env: { RUNS_CDC_ROUTES: JSON.stringify(routes) } };
    },
  };
  beforeAll(async () => {
    workspace.pgdb = await postgres();
  });
  afterAll(async () => {
    await workspace.pgdb?.close();
    rmSync(chdbPath, { recursive: true, force: true });
  });
  return workspace;
}
