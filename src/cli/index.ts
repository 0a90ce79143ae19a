/** `runs-cdc` — one binary, one subcommand per job. Exit codes: see failures.ts (0 ok, 1 a finding, 2 could not run). */
import { Command, CommanderError } from 'commander';
import { backfillCommand } from './backfill.ts';
import { deadLettersCommand } from './dead-letters.ts';
import { demoCommand } from './demo.ts';
import { EXIT_COULD_NOT_RUN, EXIT_OK, expectedFailure } from './failures.ts';
import { migrateCommand } from './migrate.ts';
import { redactProcessOutput } from './output.ts';
import { replicateCommand } from './replicate.ts';
import { runsCommand, serveCommand } from './runs.ts';
import { statusCommand } from './status.ts';
import { verifyCommand } from './verify.ts';

const program = new Command('runs-cdc')
  .description("Replicates the task platform's runs from Postgres into ClickHouse")
  .addCommand(migrateCommand())
  .addCommand(replicateCommand())
  .addCommand(backfillCommand())
  .addCommand(runsCommand())
  .addCommand(serveCommand())
  .addCommand(statusCommand())
  .addCommand(deadLettersCommand())
  .addCommand(verifyCommand())
  .addCommand(demoCommand())
  .showHelpAfterError();

// Everything the CLI prints passes the one redaction (redact.ts), query results aside (output.ts).
// Logs are redacted by the logger's own stream.
redactProcessOutput();

// Commander's own usage errors (unknown flag, missing value) exit 2 like ours; help exits 0.
const overrideExits = (command: Command): void => {
  command.exitOverride();
  for (const sub of command.commands) overrideExits(sub);
};
overrideExits(program);

// Exit explicitly (chDB and pg can keep the event loop alive), but only once stderr has taken the
// message: writes to a pipe are asynchronous.
try {
  await program.parseAsync(process.argv);
  process.stderr.write('', () => process.exit(Number(process.exitCode ?? EXIT_OK)));
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander printed its sentence already.
    const ok = error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version';
    process.stderr.write('', () => process.exit(ok ? EXIT_OK : EXIT_COULD_NOT_RUN));
  } else {
    const message = expectedFailure(error) ?? (error as Error).stack ?? String(error);
    process.stderr.write(`runs-cdc: ${message}\n`, () => process.exit(EXIT_COULD_NOT_RUN));
  }
}
