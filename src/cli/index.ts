/** `runs-cdc` — one binary, one subcommand per job. Errors print one sentence and exit 1. */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { RunsCdcError } from '../errors.ts';
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

// Exit explicitly (chDB and pg can keep the event loop alive), but only once stderr has taken the
// message: writes to a pipe are asynchronous.
try {
  await program.parseAsync(process.argv);
  process.stderr.write('', () => process.exit(Number(process.exitCode ?? 0)));
} catch (error) {
  const message = error instanceof RunsCdcError ? error.message : ((error as Error).stack ?? String(error));
  process.stderr.write(`runs-cdc: ${message}\n`, () => process.exit(1));
}
