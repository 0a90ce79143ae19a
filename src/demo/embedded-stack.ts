/**
 * The embedded default, end to end: a private Postgres with the runs tables, chDB in this process
 * (migrated), and the replication daemon streaming between them. For the demo and benchmarks.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { type Config, loadConfig } from '../config.ts';
import { type RunningPostgres, startPostgres } from '../embedded/postgres.ts';
import type { Logger } from '../logger.ts';
import type { DaemonObserver } from '../replication/daemon.ts';
import { type Replication, startReplication } from '../replication/start.ts';
import { connectClickHouse } from '../sink/clickhouse.ts';
import { migrate } from '../sink/migrations.ts';
import { RunsTable } from '../sink/runs-table.ts';
import { postgresConfig } from '../source/connection.ts';
import { createRunsTables } from '../source/schema.ts';

export interface EmbeddedStack {
  server: RunningPostgres;
  sql: pg.Client;
  ch: ClickHouseClient;
  config: Config;
  table: RunsTable;
  replication: Replication;
  /** Stops the daemon (if still running), then both databases. */
  close(): Promise<void>;
}

/** `beforeReplication` runs once the tables exist and before the slot does: rows it writes are
 * history that only a backfill can copy. `observer` sees the daemon's flushes (metrics). */
export async function startEmbeddedStack(
  log: Logger,
  beforeReplication?: (sql: pg.Client) => Promise<void>,
  observer?: DaemonObserver,
): Promise<EmbeddedStack> {
  const server = await startPostgres();
  const sql = new pg.Client(postgresConfig(server.url));
  let ch: ClickHouseClient | undefined;
  let replication: Replication | undefined;
  const close = async () => {
    await replication?.stop();
    await sql.end().catch(() => {});
    await ch?.close();
    await server.stop();
  };
  try {
    await sql.connect();
    await createRunsTables(sql);
    await beforeReplication?.(sql);
    const config = loadConfig({ databaseUrl: server.url, chdbPath: ':memory:' }, {});
    ch = await connectClickHouse({ chdbPath: config.chdbPath });
    await migrate(ch, config.clickhouseDatabase);
    const table = RunsTable.fromConfig(ch, config, log);
    replication = await startReplication(server.url, config, table, log, observer);
    return { server, sql, ch, config, table, replication, close };
  } catch (error) {
    await close();
    throw error;
  }
}
