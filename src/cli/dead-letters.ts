/** `runs-cdc dead-letters list|replay`: rows ClickHouse refused, and trying them again. */
import { Command } from 'commander';
import { formatTable } from '../report.ts';
import { DeadLetters, replayDeadLetters } from '../sink/dead-letters.ts';
import { setExitCode, stdout } from './job-context.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, openClickHouse, openRunsTable } from './runtime.ts';

export function deadLettersCommand(): Command {
  const command = new Command('dead-letters').description('rows ClickHouse refused for their content (poison rows)');
  const list = new Command('list')
    .description('show the rows not replayed yet (--all: replayed ones too)')
    .option('--all', 'include replayed rows')
    .option('--api-url <url>', 'run it in the replicate daemon at this URL (its --metrics-port), which may hold the chDB directory');
  addConfigOptions(list, CLICKHOUSE_SETTINGS).action(async () => {
    const config = configFrom(list);
    const client = await openClickHouse(config);
    try {
      const letters = await new DeadLetters(client, config.clickhouseDatabase).list(Boolean(list.opts().all));
      stdout(
        `${letters.length === 0 ? 'no dead letters' : formatTable(letters.map((l) => ({ created: l.createdAt, table: l.sourceTable, run: l.runId, lsn: l.commitLsn || '(backfill)', reason: l.reason, replayed: l.replayed, error: l.error.slice(0, 80) })))}\n`,
      );
    } finally {
      await client.close();
    }
  });
  const replay = new Command('replay')
    .description('write the rows again (after fixing the cause); exits 1 if any is still refused')
    .option('--api-url <url>', 'run it in the replicate daemon at this URL (its --metrics-port), which may hold the chDB directory');
  addConfigOptions(replay, [...CLICKHOUSE_SETTINGS, 'retryInitialMs', 'retryMaxMs']).action(async () => {
    const config = configFrom(replay);
    const log = loggerFor(config);
    const client = await openClickHouse(config);
    try {
      // A row refused again stays where it is, not dead-lettered twice.
      const table = await openRunsTable(client, config, log, { maxRetries: 3, deadLetters: false });
      const { replayed, refused } = await replayDeadLetters(new DeadLetters(client, config.clickhouseDatabase), (rows) =>
        table.write(rows),
      );
      for (const { letter, error } of refused) stdout(`still refused: ${letter.sourceTable} ${letter.runId}: ${error}\n`);
      stdout(`${replayed} replayed, ${refused.length} still refused\n`);
      setExitCode(refused.length > 0 ? 1 : 0);
    } finally {
      await client.close();
    }
  });
  return command.addCommand(list).addCommand(replay);
}
