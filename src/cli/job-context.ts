/**
 * Where a command's output goes: this process's stdout and exit code, or, when a running daemon
 * runs the command for a client (`--api-url`, see jobs.ts), that client's response. Commands print
 * with `stdout()` and end with `setExitCode()`; configFrom, loggerFor and onStopSignals ask here
 * too, so one command body serves both.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';

export interface JobContext {
  write(text: string): void;
  setExitCode(code: number): void;
  /** The client's settings from its environment (flags come with its arguments). */
  env: NodeJS.ProcessEnv;
  /** Settings the daemon keeps whatever the client says: where the databases are, no ports. */
  forced: Partial<Config>;
  log: Logger;
  /** Aborted when the client goes away: the job stops as on SIGINT. */
  signal: AbortSignal;
}

const current = new AsyncLocalStorage<JobContext>();

export function runInJob<T>(context: JobContext, run: () => Promise<T>): Promise<T> {
  return current.run(context, run);
}

export function jobContext(): JobContext | undefined {
  return current.getStore();
}

export function stdout(text: string): void {
  const job = current.getStore();
  if (job) job.write(text);
  else process.stdout.write(text);
}

export function setExitCode(code: number): void {
  const job = current.getStore();
  if (job) job.setExitCode(code);
  else process.exitCode = code;
}
