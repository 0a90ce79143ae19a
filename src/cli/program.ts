/** The `runs-cdc` command tree, for the binary and for jobs a daemon runs for a client. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { backfillCommand } from './backfill.ts';
import { deadLettersCommand } from './dead-letters.ts';
import { demoCommand } from './demo.ts';
import { migrateCommand } from './migrate.ts';
import { replicateCommand } from './replicate.ts';
import { runsCommand, serveCommand } from './runs.ts';
import { statusCommand } from './status.ts';
import { verifyCommand } from './verify.ts';

// package.json is two levels up from src/cli/ and from dist/cli/ alike.
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The command tree; every command throws instead of exiting (the binary and the daemon's jobs
 * each decide what an end means: cli/index.ts, cli/jobs.ts). */
export function buildProgram(): Command {
  const program = new Command('runs-cdc')
    .description("Replicates the task platform's runs from Postgres into ClickHouse")
    .version(version)
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
  forEachCommand(program, (command) => command.exitOverride());
  return program;
}

/** `visit` on `command` and every command below it. */
export function forEachCommand(command: Command, visit: (command: Command) => void): void {
  visit(command);
  for (const sub of command.commands) forEachCommand(sub, visit);
}
