import { Command } from 'commander';
import { migrate } from '../sink/migrations.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, describeClickHouse, loggerFor, openClickHouse } from './runtime.ts';

export function migrateCommand(): Command {
  const command = new Command('migrate').description('create or update the ClickHouse tables (idempotent)');
  addConfigOptions(command, [...CLICKHOUSE_SETTINGS, 'clickhouseCluster']).action(async () => {
    const config = configFrom(command);
    const log = loggerFor(config);
    const client = await openClickHouse(config);
    try {
      const applied = await migrate(client, config.clickhouseDatabase, config.clickhouseCluster);
      log.info(
        { applied, database: config.clickhouseDatabase, cluster: config.clickhouseCluster, clickhouse: describeClickHouse(config) },
        applied.length ? 'migrations applied' : 'already up to date',
      );
    } finally {
      await client.close();
    }
  });
  return command;
}
