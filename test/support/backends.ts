/**
 * Which ClickHouse the tests talk to (see global-setup.ts), and the settings child processes get
 * for the same one. With a server, each test file's CLI runs use a database of their own.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { connectClickHouse } from '../../src/sink/clickhouse.ts';
import { clickhouseUrl, uniqueName } from './databases.ts';

/** True when tests run against a ClickHouse server (chDB-only behaviour is then skipped). */
export const usingClickHouseServer = (): boolean => clickhouseUrl() !== undefined;

/** The database `runs-cdc` child processes of this test file use. */
export const CLI_DATABASE = uniqueName('cli');

/** Environment for a `runs-cdc` child process: the same ClickHouse as the tests. */
export function cliClickHouseEnv(chdbPath: string): Record<string, string> {
  const url = clickhouseUrl();
  return url ? { CLICKHOUSE_URL: url, CLICKHOUSE_DATABASE: CLI_DATABASE } : { CHDB_PATH: chdbPath, CLICKHOUSE_DATABASE: CLI_DATABASE };
}

/** A client on what the child processes wrote (open chDB only once they have exited). */
export function cliClickHouse(chdbPath: string): Promise<ClickHouseClient> {
  return connectClickHouse({ url: clickhouseUrl(), chdbPath });
}

/** Another connection to the tests' ClickHouse (on chDB, the same in-process engine). */
export function anotherClickHouse(): Promise<ClickHouseClient> {
  return connectClickHouse({ url: clickhouseUrl(), chdbPath: ':memory:' });
}
