/**
 * Reading from a ClickHouse server the way a load balancer and an older server answer:
 *
 * - A keep-alive connection the balancer closed can reset the next request (ECONNRESET, "socket
 *   hang up"). A read is idempotent, so it is sent again, a bounded number of times; writes are
 *   retried by retry.ts, which knows what a retry means for acks.
 * - A server before 25.11 that fails in the middle of a result has already answered 200: it writes
 *   the exception after the rows sent so far, and parsing that as JSONEachRow fails with a
 *   SyntaxError. The exception is read back out of the body and thrown as the ClickHouseError it
 *   is, so callers' messages for timeouts, memory limits and the rest match it as any other.
 */
import { type ClickHouseClient, ClickHouseError, type QueryParams } from '@clickhouse/client';
import pRetry from 'p-retry';

/** Attempts of a read after a network error, the first included. */
export const READ_ATTEMPTS = 3;
const READ_RETRY_DELAY_MS = 200;

/** Errors of the connection, not of the query: the server may not even have seen it. */
const NETWORK_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET']);

export function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  return error instanceof Error && !(error instanceof ClickHouseError) && /socket hang up|ECONNRESET/i.test(error.message);
}

/** The client's own pattern (common/error/error.js): code, message, and the (TYPE) after it. */
const EXCEPTION = /(?:Code|Error): (?<code>\d+).*Exception: (?<message>.+?)\((?<type>(?=[A-Z0-9_]*[A-Z]{3})[A-Z0-9_]+)\)/s;

/** The rows of a JSONEachRow body, or the exception a server wrote into it mid-result. */
export function parseJsonEachRow<T>(body: string): T[] {
  const rows: T[] = [];
  let offset = 0;
  while (offset < body.length) {
    const end = body.indexOf('\n', offset);
    const line = body.slice(offset, end === -1 ? body.length : end);
    if (line.trim() !== '') {
      try {
        rows.push(JSON.parse(line) as T);
      } catch {
        throw midResultError(body.slice(offset));
      }
    }
    offset = end === -1 ? body.length : end + 1;
  }
  return rows;
}

function midResultError(rest: string): Error {
  const groups = EXCEPTION.exec(rest)?.groups;
  if (groups) return new ClickHouseError({ code: groups.code ?? '', message: (groups.message ?? '').trim(), type: groups.type });
  return new Error(`ClickHouse sent a result that is not JSONEachRow: ${JSON.stringify(rest.slice(0, 200))}`);
}

/** Run a SELECT once and return its rows as JSONEachRow (an error mid-result is a ClickHouseError). */
export async function queryRows<T>(client: ClickHouseClient, params: Omit<QueryParams, 'format'>): Promise<T[]> {
  const result = await client.query({ ...params, format: 'JSONEachRow' });
  return parseJsonEachRow<T>(await result.text());
}

/** Run a SELECT and return its rows as JSONEachRow, retrying network errors READ_ATTEMPTS times. */
export function readRows<T>(client: ClickHouseClient, params: Omit<QueryParams, 'format'>): Promise<T[]> {
  return pRetry(() => queryRows<T>(client, params), {
    retries: READ_ATTEMPTS - 1,
    minTimeout: READ_RETRY_DELAY_MS,
    shouldRetry: ({ error }) => isNetworkError(error),
  });
}
