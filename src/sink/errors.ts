/**
 * Which ClickHouse failures are worth retrying. Retrying a schema mismatch or a rejected password
 * forever would hide it; giving up on a network blip or "too many parts" would lose the stream.
 */
import { ClickHouseError } from '@clickhouse/client';

/** ClickHouse error codes no retry can fix: schema, auth, unparseable data. */
const FATAL_CODES = new Map<string, string>([
  ['6', 'CANNOT_PARSE_TEXT'],
  ['8', 'THERE_IS_NO_COLUMN'],
  ['16', 'NO_SUCH_COLUMN_IN_TABLE'],
  ['26', 'CANNOT_PARSE_QUOTED_STRING'],
  ['27', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  ['38', 'CANNOT_PARSE_DATE'],
  ['41', 'CANNOT_PARSE_DATETIME'],
  ['47', 'UNKNOWN_IDENTIFIER'],
  ['53', 'TYPE_MISMATCH'],
  ['60', 'UNKNOWN_TABLE'],
  ['62', 'SYNTAX_ERROR'],
  ['69', 'ARGUMENT_OUT_OF_BOUND'],
  ['70', 'CANNOT_CONVERT_TYPE'],
  ['72', 'CANNOT_PARSE_NUMBER'],
  ['81', 'UNKNOWN_DATABASE'],
  ['117', 'INCORRECT_DATA'],
  ['164', 'READONLY'],
  ['192', 'UNKNOWN_USER'],
  ['193', 'WRONG_PASSWORD'],
  ['194', 'REQUIRED_PASSWORD'],
  ['469', 'VIOLATED_CONSTRAINT'],
  ['497', 'ACCESS_DENIED'],
  ['516', 'AUTHENTICATION_FAILED'],
]);

/** Codes that blame the data of particular rows, not the table or the connection. */
const ROW_LEVEL_CODES = new Set(['6', '26', '27', '38', '41', '53', '69', '70', '72', '117', '469']);

export interface ErrorClass {
  transient: boolean;
  /** The rows' content was refused (see ROW_LEVEL_CODES); only for non-transient errors. */
  rowLevel?: boolean;
  /** Short reason for logs and metrics: the ClickHouse error type, or the network error code. */
  reason: string;
}

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
    const fatal = FATAL_CODES.get(server.code);
    return {
      transient: fatal === undefined,
      rowLevel: ROW_LEVEL_CODES.has(server.code),
      reason: server.type ?? fatal ?? `code ${server.code}`,
    };
  }
  const code = (error as { code?: unknown })?.code;
  // Network errors (ECONNREFUSED, ECONNRESET, timeouts) and anything else the server did not
  // explicitly reject: ClickHouse may be restarting.
  return { transient: true, reason: typeof code === 'string' ? code : ((error as Error)?.message ?? String(error)).slice(0, 120) };
}
