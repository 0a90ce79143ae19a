/**
 * `runs-cdc/replication`: run the daemon from code instead of `runs-cdc replicate`.
 *
 *   const config = loadConfig({ databaseUrl, clickhouseUrl });   // flags' names; env fills the rest
 *   const clickhouse = await connectClickHouse({ url: config.clickhouseUrl, chdbPath: config.chdbPath });
 *   await migrate(clickhouse, config.clickhouseDatabase);
 *   const log = createLogger();
 *   const replication = await startReplication(databaseUrl, config, RunsTable.fromConfig(clickhouse, config, log), log);
 *   // ... later: await replication.stop(); await clickhouse.close();
 *
 * The same guarantees as the command: nothing is confirmed to Postgres before ClickHouse holds it.
 */
export { type Config, loadConfig } from '../config.ts';
export { ConfigError, PreflightError, RunsCdcError, SinkFatalError } from '../errors.ts';
export { createLogger, type Logger, silentLogger } from '../logger.ts';
export { MissingOptionalPackageError } from '../optional.ts';
export { type ClickHouseTarget, connectClickHouse } from '../sink/clickhouse.ts';
export { migrate, pendingMigrations } from '../sink/migrations.ts';
export { RunsTable } from '../sink/runs-table.ts';
export type { DaemonObserver, DaemonSettings, DaemonStats } from './daemon.ts';
export { type Replication, startReplication } from './start.ts';
