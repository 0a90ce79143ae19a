import { Command } from 'commander';
import { checkServerVersion, migrate, SUPPORTED_SERVER_VERSION } from '../sink/migrations.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, describeClickHouse, loggerFor, openClickHouse } from './runtime.ts';

export function migrateCommand(): Command {
  const command = new Command('migrate').description('create or update the ClickHouse tables (idempotent)');
  addConfigOptions(command, [...CLICKHOUSE_SETTINGS, 'clickhouseCluster']).action(async () => {
    const config = configFrom(command);
    const log = loggerFor(config);
    const client = await openClickHouse(config);
    try {
      const server = await checkServerVersion(client);
      if (!server.supported) {
        log.warn(
          { version: server.version },
          `ClickHouse ${server.version} is older than ${SUPPORTED_SERVER_VERSION} LTS, the oldest runs-cdc supports: it should work, but upgrade when you can`,
        );
      }
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
