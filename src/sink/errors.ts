/**
 * Which ClickHouse failures are worth retrying. Retrying a schema mismatch or a rejected password
 * forever would hide it; giving up on a network blip or "too many parts" would lose the stream.
 */
import { ClickHouseError } from '@clickhouse/client';
import { firstLine } from '../errors.ts';

/**
 * ClickHouse error codes no retry can fix (schema, auth, unparseable data): code, name, and whether
 * the code blames the data of particular rows rather than the table or the connection.
 */
const FATAL_CODES = new Map<string, { name: string; rowLevel: boolean }>(
  (
    [
      ['6', 'CANNOT_PARSE_TEXT', true],
      ['8', 'THERE_IS_NO_COLUMN', false],
      ['16', 'NO_SUCH_COLUMN_IN_TABLE', false],
      ['26', 'CANNOT_PARSE_QUOTED_STRING', true],
      ['27', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', true],
      ['38', 'CANNOT_PARSE_DATE', true],
      ['41', 'CANNOT_PARSE_DATETIME', true],
      ['47', 'UNKNOWN_IDENTIFIER', false],
      ['53', 'TYPE_MISMATCH', true],
      ['60', 'UNKNOWN_TABLE', false],
      ['62', 'SYNTAX_ERROR', false],
      ['69', 'ARGUMENT_OUT_OF_BOUND', true],
      ['70', 'CANNOT_CONVERT_TYPE', true],
      ['72', 'CANNOT_PARSE_NUMBER', true],
      ['81', 'UNKNOWN_DATABASE', false],
      ['117', 'INCORRECT_DATA', true],
      ['164', 'READONLY', false],
      ['192', 'UNKNOWN_USER', false],
      ['193', 'WRONG_PASSWORD', false],
      ['194', 'REQUIRED_PASSWORD', false],
      ['469', 'VIOLATED_CONSTRAINT', true],
      ['497', 'ACCESS_DENIED', false],
      ['516', 'AUTHENTICATION_FAILED', false],
    ] as const
  ).map(([code, name, rowLevel]) => [code, { name, rowLevel }]),
);

export interface ErrorClass {
  transient: boolean;
  /** The rows' content was refused (see FATAL_CODES); only for non-transient errors. */
  rowLevel?: boolean;
  /** Short reason for logs and metrics: the ClickHouse error type, or the network error code. */
  reason: string;
  /** What fixes a fatal error, when it is more particular than "fix the table or the data". */
  fix?: string;
  /** Transient, but only a few times: past that, the write's rows are refused (split, and a single
   * row goes to dead letters). MEMORY_LIMIT_EXCEEDED: pressure passes, a 50 MB row does not. */
  rowLevelAfterRetries?: number;
  /** Transient, but only a few times: past that, fatal (with `fix`). TIMEOUT_EXCEEDED: a load
   * spike passes, a read too large for the request timeout does not. */
  fatalAfterRetries?: number;
}

/** Retries of TIMEOUT_EXCEEDED (max_execution_time, see timeoutSettings) before giving up. */
export const TIMEOUT_RETRIES = 3;

/** Retries of MEMORY_LIMIT_EXCEEDED before the rows are blamed. */
export const MEMORY_RETRIES = 3;

/** 252 is TOO_MANY_PARTS (merges behind: wait) and also this (the batch itself: waiting never helps). */
const TOO_MANY_PARTITIONS = /too many partitions for single insert block/i;

/** A 401/403/407 with a body that is not ClickHouse's: a proxy in front of it refused the request. */
const PROXY_AUTH = /\b(401|403|407)\b|unauthori[sz]ed|forbidden|authentication required|authorization required/i;

/** An error ClickHouse itself returned. Duck-typed as well: chDB throws the ClickHouseError of its
 * own copy of @clickhouse/client-common, which `instanceof` does not recognise. */
function serverError(error: unknown): { code: string; type?: string } | undefined {
  const isServerError = error instanceof ClickHouseError || (error instanceof Error && error.constructor.name === 'ClickHouseError');
  if (!isServerError) return undefined;
  const { code, type } = error as { code?: unknown; type?: unknown };
  return { code: String(code), type: typeof type === 'string' ? type : undefined };
}

export function classifyClickHouseError(error: unknown): ErrorClass {
  const server = serverError(error);
  if (server) {
    if (server.code === '252' && TOO_MANY_PARTITIONS.test((error as Error).message)) {
      return {
        transient: false,
        rowLevel: false,
        reason: 'TOO_MANY_PARTITIONS',
        fix: "one insert spans more monthly partitions (months of created_at) than the server's max_partitions_per_insert_block allows: raise it in the writer's profile, or lower --batch-rows / --chunk-rows",
      };
    }
    if (server.code === '159') {
      return {
        transient: true,
        reason: server.type ?? 'TIMEOUT_EXCEEDED',
        fatalAfterRetries: TIMEOUT_RETRIES,
        fix: 'it ran into max_execution_time, 10 s under the request timeout: raise --clickhouse-request-timeout (CLICKHOUSE_REQUEST_TIMEOUT)',
      };
    }
    if (server.code === '241')
      return { transient: true, reason: server.type ?? 'MEMORY_LIMIT_EXCEEDED', rowLevelAfterRetries: MEMORY_RETRIES };
    const fatal = FATAL_CODES.get(server.code);
    return {
      transient: fatal === undefined,
      rowLevel: fatal?.rowLevel ?? false,
      reason: server.type ?? fatal?.name ?? `code ${server.code}`,
    };
  }
  const code = (error as { code?: unknown })?.code;
  if (code === undefined && error instanceof Error && PROXY_AUTH.test(firstLine(error))) {
    return {
      transient: false,
      rowLevel: false,
      reason: 'HTTP_AUTH',
      fix: "the server or a proxy in front of it refused the request (HTTP 401/403): check the user and password in CLICKHOUSE_URL and the proxy's access rules",
    };
  }
  // Network errors (ECONNREFUSED, ECONNRESET, timeouts) and anything else the server did not
  // explicitly reject: ClickHouse may be restarting.
  return { transient: true, reason: typeof code === 'string' ? code : ((error as Error)?.message ?? String(error)).slice(0, 120) };
}
