/**
 * Where the runs live in ClickHouse: the table's name and the one way to qualify it with a
 * database. Sink, queries, verify, status and the slot ledger all name it through here.
 */
import { ConfigError } from '../errors.ts';

/** The one ClickHouse table both Postgres tables replicate into (clickhouse/001_task_runs_v2.sql). */
export const RUNS_TABLE = 'task_runs_v2';

/** A ClickHouse identifier runs-cdc will splice into SQL (database, cluster names): plain names only. */
export function assertIdentifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new ConfigError(`${what} ${JSON.stringify(name)} must be letters, digits and underscores, not starting with a digit`);
  }
  return name;
}

/** `database.task_runs_v2`, the database checked to be a plain identifier. */
export function runsTableIn(database: string): string {
  return `${assertIdentifier(database, 'ClickHouse database')}.${RUNS_TABLE}`;
}
