/** `runs-cdc` — one binary, one subcommand per job. Exit codes: see failures.ts (0 ok, 1 a finding, 2 could not run). */
import { CommanderError } from 'commander';
import { commanderExitCode, EXIT_COULD_NOT_RUN, EXIT_OK, expectedFailure } from './failures.ts';
import { remoteJob, runRemoteJob } from './jobs.ts';
import { redactProcessOutput } from './output.ts';
import { buildProgram } from './program.ts';

const program = buildProgram();

// Everything the CLI prints passes the one redaction (redact.ts), query results aside (output.ts).
// Logs are redacted by the logger's own stream.
redactProcessOutput();

// Commander's own usage errors (unknown flag, missing value) exit 2 like ours, help 0: every
// command throws (buildProgram) and the catch below picks the code.

// Exit explicitly (chDB and pg can keep the event loop alive), but only once stderr has taken the
// message: writes to a pipe are asynchronous.
try {
  // backfill, verify, dead-letters and status with --api-url: the daemon at that URL runs them.
  const remote = remoteJob(process.argv.slice(2));
  if (remote) process.exitCode = await runRemoteJob(remote);
  else await program.parseAsync(process.argv);
  process.stderr.write('', () => process.exit(Number(process.exitCode ?? EXIT_OK)));
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed its sentence already.
    process.stderr.write('', () => process.exit(commanderExitCode(error)));
  } else {
    const message = expectedFailure(error) ?? (error as Error).stack ?? String(error);
    process.stderr.write(`runs-cdc: ${message}\n`, () => process.exit(EXIT_COULD_NOT_RUN));
  }
}
