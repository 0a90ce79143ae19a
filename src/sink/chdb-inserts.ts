/**
 * chDB's connection with inserts handed over as bytes. Its own `insert` turns the body into a JS
 * string and runs `INSERT ... FORMAT X\n<body>` as one SQL text: every batch is decoded from UTF-8,
 * joined and encoded back on the main thread, the thread that also reads the WAL. chDB's raw
 * insert takes one Buffer and parses it on its own threads. Only the insert differs: every other
 * call is chDB's connection as it is, and so is an insert whose statement is not the client's
 * plain `INSERT INTO db.table (columns) FORMAT X`.
 */
import type { Readable } from 'node:stream';
import { type createClient, parseError } from '@clickhouse/client';

type ChConnection = NonNullable<NonNullable<Parameters<typeof createClient>[0]>['connection']>;
type InsertParams = Parameters<ChConnection['insert']>[0];
type InsertResult = Awaited<ReturnType<ChConnection['insert']>>;

/** The part of chDB's connection runs-cdc uses (chdb is optional: no type depends on it). */
export interface ChdbConnection {
  insert(params: InsertParams): Promise<InsertResult>;
  chdb: {
    rawInsert(params: {
      table: string;
      columns?: string[];
      format: string;
      values: Buffer;
      settings?: Record<string, string | number | boolean>;
      signal?: AbortSignal;
    }): Promise<{ rowsWritten?: number; bytesWritten?: number; elapsed?: number }>;
  };
}

/** The statement @clickhouse/client builds for an insert (getInsertQuery), with names chDB's raw
 * insert accepts. Anything else (quoted names, `* EXCEPT`) goes through chDB's own insert. */
const CLIENT_INSERT =
  /^INSERT INTO ([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)(?: \(([A-Za-z0-9_]+(?:, [A-Za-z0-9_]+)*)\))? FORMAT (TabSeparated|TSV|JSONEachRow|JSONCompactEachRow|CSV)$/;

export interface ParsedInsert {
  table: string;
  columns?: string[];
  format: string;
}

/** The table, columns and format of a client-built insert statement, or undefined for any other. */
export function parseClientInsert(query: string): ParsedInsert | undefined {
  const match = CLIENT_INSERT.exec(query);
  if (!match) return undefined;
  const [, table, columns, format] = match as unknown as [string, string, string | undefined, string];
  return columns === undefined ? { table, format } : { table, columns: columns.split(', '), format };
}

/** An insert's body as one Buffer (the client hands a string or a stream of byte or text chunks). */
export async function bodyBytes(values: string | Readable): Promise<Buffer> {
  if (typeof values === 'string') return Buffer.from(values, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of values as AsyncIterable<unknown>) {
    if (typeof chunk === 'string') chunks.push(Buffer.from(chunk, 'utf8'));
    else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    else throw new TypeError(`an insert body chunk must be bytes or text, not ${typeof chunk}`);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

/** Settings chDB's own connection leaves out: HTTP-only ones the engine does not know, and the
 * output format it takes as an option (chdb-connection.js: HTTP_ONLY_SETTINGS, default_format). */
export const NOT_ENGINE_SETTINGS: ReadonlySet<string> = new Set([
  'wait_end_of_query',
  'send_progress_in_http_headers',
  'http_response_buffer_size',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_response_compression_method',
  'http_native_compression_disable_checksumming_on_decompress',
  'default_format',
]);

/** Settings as an insert's SETTINGS clause takes them: the engine's, as scalars. */
export function insertSettings(settings: InsertParams['clickhouse_settings']): Record<string, string | number | boolean> {
  const scalars: Record<string, string | number | boolean> = {};
  for (const [name, value] of Object.entries(settings ?? {})) {
    if (NOT_ENGINE_SETTINGS.has(name)) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') scalars[name] = value;
  }
  return scalars;
}

/** `connection` with its inserts handed to chDB as bytes (see the module comment). */
export function withByteInserts<C extends ChdbConnection>(connection: C): C {
  const insert = async (params: InsertParams): Promise<InsertResult> => {
    const parsed = parseClientInsert(params.query);
    if (!parsed) return connection.insert(params);
    const body = await bodyBytes(params.values as string | Readable);
    const queryId = params.query_id ?? crypto.randomUUID();
    params.abort_signal?.throwIfAborted(); // chDB would start the write and only then give up
    try {
      const written = await connection.chdb.rawInsert({
        ...parsed,
        values: body,
        settings: insertSettings(params.clickhouse_settings),
        ...(params.abort_signal ? { signal: params.abort_signal } : {}),
      });
      const rows = String(written.rowsWritten ?? 0);
      const bytes = String(written.bytesWritten ?? 0);
      return {
        query_id: queryId,
        response_headers: {},
        http_status_code: 200,
        summary: {
          read_rows: rows,
          read_bytes: bytes,
          written_rows: rows,
          written_bytes: bytes,
          total_rows_to_read: '0',
          result_rows: '0',
          result_bytes: '0',
          elapsed_ns: String(Math.round((written.elapsed ?? 0) * 1e9)),
        },
      };
    } catch (error) {
      // As chDB's own insert reports it: a ClickHouseError with the engine's code and type, so a
      // refused row is told apart from a failed engine (classifyClickHouseError).
      const mapped = parseError(error instanceof Error ? error.message : String(error));
      mapped.cause = error;
      throw mapped;
    }
  };
  // chDB's connection keeps its state in private fields: its other methods run on it, not the proxy.
  return new Proxy(connection, {
    get(target, key) {
      if (key === 'insert') return insert;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
