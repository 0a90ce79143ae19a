/** The real `runs-cdc` binary as a child process, for tests of process-level behaviour. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, '../../bin/runs-cdc.js');

export interface CliProcess {
  child: ChildProcess;
  /** Exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  /** Everything printed so far, stdout and stderr. */
  output(): string;
}

/** Run `runs-cdc <args>` with the given environment added to this process's. */
export function runCli(args: string[], env: Record<string, string>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exit, output: () => output };
}
