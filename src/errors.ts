/**
 * Errors a person can act on: each says what is wrong and what fixes it, in one sentence. The CLI
 * prints `message` and exits non-zero; call sites test the class, never the text.
 */
/** An error's first line: ClickHouse and pg messages carry stack-like detail after it. */
export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}

/**
 * An error runs-cdc raises on purpose. Two separate questions about it: can a person act on it
 * (every RunsCdcError: its message says what to do), and may trying again succeed without anyone
 * acting (`retryable`; false unless a subclass says otherwise). Ask `isRetryable`, never
 * `instanceof RunsCdcError`, to decide whether to retry.
 */
export class RunsCdcError extends Error {
  override name = 'RunsCdcError';
  /** Trying again later may succeed without anyone acting (a dropped connection, a taken slot). */
  readonly retryable: boolean = false;
}

/** Whether trying again may succeed: a RunsCdcError says so itself; anything else (a refused
 * connection, a dropped socket, a server restarting) is presumed transient. */
export function isRetryable(error: unknown): boolean {
  return error instanceof RunsCdcError ? error.retryable : true;
}

/**
 * The caller's mistake (a flag, a query parameter, a request): HTTP 400, CLI exit 2. The message
 * names the input as the caller typed it (`--env`, `env`).
 */
export class UsageError extends RunsCdcError {
  override name = 'UsageError';
}

/** Invalid configuration (env or flags). */
export class ConfigError extends UsageError {
  override name = 'ConfigError';
}

/** Postgres is not set up for replication as runs-cdc needs it. */
export class PreflightError extends RunsCdcError {
  override name = 'PreflightError';
}

/** ClickHouse refused a write for a reason retrying cannot fix (schema, auth, bad data). */
export class SinkFatalError extends RunsCdcError {
  override name = 'SinkFatalError';
}

/** ClickHouse refused rows for what is in them (a value it cannot parse, a constraint): some row
 * of the write is poison; the others may be fine. */
export class RowRejectedError extends SinkFatalError {
  override name = 'RowRejectedError';
  constructor(
    message: string,
    /** ClickHouse's error type, e.g. VIOLATED_CONSTRAINT. */
    readonly reason: string,
    /** ClickHouse's own message, first line. */
    readonly detail: string,
  ) {
    super(message);
  }
}

/** The replication stream sent something runs-cdc must not skip past. */
export class StreamError extends RunsCdcError {
  override name = 'StreamError';
}
