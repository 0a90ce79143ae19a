/**
 * The ClickHouse connection. Production talks HTTP (`CLICKHOUSE_URL`); the embedded default is
 * chDB, an in-process ClickHouse engine, behind the same @clickhouse/client API. One code path:
 * only the connection differs.
 */
import { mkdirSync } from 'node:fs';
import { type ClickHouseClient, ClickHouseLogLevel, type ClickHouseSettings, createClient } from '@clickhouse/client';
import { importOptional } from '../optional.ts';

type ChConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];
/** The part of `chdb/connection` runs-cdc uses (chdb is optional: no type depends on it). */
interface ChdbConnectionModule {
  createChdbConnection(options: { path: string }): unknown;
}

export interface ClickHouseTarget {
  /** HTTP URL of a ClickHouse server; when absent, chDB at `chdbPath`. */
  url?: string;
  /** chDB data directory (`:memory:` for a temporary one). One per process. */
  chdbPath: string;
  /** Per-request timeout for HTTP. */
  requestTimeoutMs?: number;
}

/** Settings every runs-cdc session uses, on a server and on chDB alike. */
export const SESSION_SETTINGS: ClickHouseSettings = {
  // A server's default; chDB's is 0. Counts and UInt64s come back as strings either way.
  output_format_json_quote_64bit_integers: 1,
  // A column ClickHouse does not know is a schema mismatch, not something to drop silently.
  input_format_skip_unknown_fields: 0,
  date_time_input_format: 'basic',
  // On a cluster (migrate --cluster) inserts go through Distributed tables: forward them to the
  // shards before the INSERT returns, or an acked row could die in a node's send queue.
  insert_distributed_sync: 1,
};

/** The client's own logger is off: failures surface as errors to runs-cdc, which logs each one once
 * (with what it does about it) in its own JSON logs. */
const CLIENT_LOG = { level: ClickHouseLogLevel.OFF };

export async function connectClickHouse(target: ClickHouseTarget): Promise<ClickHouseClient> {
  if (target.url) {
    return createClient({
      url: target.url,
      clickhouse_settings: SESSION_SETTINGS,
      log: CLIENT_LOG,
      request_timeout: target.requestTimeoutMs ?? 60_000,
    });
  }
  if (target.chdbPath !== ':memory:') mkdirSync(target.chdbPath, { recursive: true });
  // loads the 540 MB libchdb only here, and only if the optional package is installed
  const { createChdbConnection } = await importOptional<ChdbConnectionModule>('chdb', 'chdb/connection');
  // cast: chdb is typed against @clickhouse/client-common, the client vendors its own copy of those types
  const connection = createChdbConnection({ path: target.chdbPath }) as unknown as ChConnection;
  return createClient({ connection, clickhouse_settings: SESSION_SETTINGS, log: CLIENT_LOG });
}

/** A ClickHouse identifier runs-cdc will splice into DDL (database names): plain names only. */
export function assertIdentifier(name: string, what: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new Error(`${what} ${JSON.stringify(name)} must be letters, digits and underscores, not starting with a digit`);
  }
  return name;
}
