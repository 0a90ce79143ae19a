/**
 * The ClickHouse connection. Production talks HTTP (`CLICKHOUSE_URL`); the embedded default is
 * chDB, an in-process ClickHouse engine, behind the same @clickhouse/client API. One code path:
 * only the connection differs.
 */
import { mkdirSync } from 'node:fs';
import { type ClickHouseClient, ClickHouseLogLevel, type ClickHouseSettings, createClient } from '@clickhouse/client';
import { importOptional } from '../optional.ts';
import { type ChdbConnection, withByteInserts } from './chdb-inserts.ts';
import type { ClickHouseTls } from './tls.ts';

type ChConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];
/** The part of `chdb/connection` runs-cdc uses (chdb is optional: no type depends on it). */
interface ChdbConnectionModule {
  createChdbConnection(options: { path: string }): ChdbConnection;
}

export interface ClickHouseTarget {
  /** HTTP URL of a ClickHouse server; when absent, chDB at `chdbPath`. */
  url?: string;
  /** chDB data directory (`:memory:` for a temporary one). One per process. */
  chdbPath: string;
  /** Per-request timeout for HTTP (default DEFAULT_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** CA, and client certificate and key, for an https:// URL (see tls.ts). */
  tls?: ClickHouseTls;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
/** The server is told to stop this much sooner than the client gives up on a request. */
export const SERVER_STOPS_SOONER_SECONDS = 10;
/** Node refuses a response whose headers pass 16 KiB; a progress header is about 200 bytes. */
const MAX_PROGRESS_HEADERS = 50;

/**
 * Limits tying the server to the client's request timeout (HTTP only): the server stops a query
 * or an ON CLUSTER wait before the client gives up, a read the client abandons is cancelled rather
 * than left running, and long reads (verify's and status' FINAL scans, TRUNCATE pages) send
 * progress headers every 10 s so a load balancer's idle timeout does not cut them.
 */
export function timeoutSettings(requestTimeoutMs: number): ClickHouseSettings {
  const serverSeconds = Math.max(1, Math.floor(requestTimeoutMs / 1000) - SERVER_STOPS_SOONER_SECONDS);
  return {
    max_execution_time: serverSeconds,
    distributed_ddl_task_timeout: String(serverSeconds),
    cancel_http_readonly_queries_on_client_close: 1,
    send_progress_in_http_headers: 1,
    http_headers_progress_interval_ms: String(Math.max(10_000, Math.ceil((serverSeconds * 1000) / MAX_PROGRESS_HEADERS))),
  };
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
  // An INSERT returns only once its rows are written, whatever the server's profile says: with
  // async_insert=1 and wait_for_async_insert=0 it would return once buffered, and the slot would be
  // confirmed for rows a crash of the server could still lose. (26.x engines default async_insert=1.)
  async_insert: 0,
  wait_for_async_insert: 1,
};

/** The client's own logger is off: failures surface as errors to runs-cdc, which logs each one once
 * (with what it does about it) in its own JSON logs. */
const CLIENT_LOG = { level: ClickHouseLogLevel.OFF };

export async function connectClickHouse(target: ClickHouseTarget): Promise<ClickHouseClient> {
  if (target.url) {
    const requestTimeoutMs = target.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    return createClient({
      url: target.url,
      clickhouse_settings: { ...SESSION_SETTINGS, ...timeoutSettings(requestTimeoutMs) },
      log: CLIENT_LOG,
      request_timeout: requestTimeoutMs,
      // A socket a load balancer closed while idle is dropped before reuse, not discovered by a reset.
      keep_alive: { eagerly_destroy_stale_sockets: true },
      // Long parameter lists (verify --repair's 1,000 ids) go in the body: proxies refuse long URLs.
      use_multipart_params_auto: true,
      tls: target.tls,
    });
  }
  if (target.chdbPath !== ':memory:') mkdirSync(target.chdbPath, { recursive: true });
  // loads the 540 MB libchdb only here, and only if the optional package is installed
  const { createChdbConnection } = await importOptional<ChdbConnectionModule>('chdb', 'chdb/connection');
  // cast: chdb is typed against @clickhouse/client-common, the client vendors its own copy of those types
  const connection = withByteInserts(createChdbConnection({ path: target.chdbPath })) as unknown as ChConnection;
  return createClient({ connection, clickhouse_settings: SESSION_SETTINGS, log: CLIENT_LOG });
}
