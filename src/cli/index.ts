/** `runs-cdc` — one binary, one subcommand per job. Errors print one sentence and exit 1. */
import { RunsCdcError } from '../errors.ts';
import { remoteJob, runRemoteJob } from './jobs.ts';
import { buildProgram } from './program.ts';

const program = buildProgram();

// Exit explicitly (chDB and pg can keep the event loop alive), but only once stderr has taken the
// message: writes to a pipe are asynchronous.
try {
  // backfill, verify, dead-letters and status with --api-url: the daemon at that URL runs them.
  const remote = remoteJob(process.argv.slice(2));
  if (remote) process.exitCode = await runRemoteJob(remote);
  else await program.parseAsync(process.argv);
  process.stderr.write('', () => process.exit(Number(process.exitCode ?? 0)));
} catch (error) {
  const message = error instanceof RunsCdcError ? error.message : ((error as Error).stack ?? String(error));
  process.stderr.write(`runs-cdc: ${message}\n`, () => process.exit(1));
}
