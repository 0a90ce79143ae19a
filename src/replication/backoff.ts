/**
 * The reconnect backoff of the stream supervisor. Each failed attempt doubles the delay, from
 * retryInitialMs up to retryMaxMs. It starts over only once a stream was healthy: it confirmed a
 * position past the one it started from (it made progress), or it kept streaming for
 * STREAM_HEALTHY_MS. A stream that Postgres accepts and then fails at once, again and again (a
 * change it cannot decode), keeps backing off instead of reconnecting every retryInitialMs.
 */
import type { Lsn } from '../lsn.ts';

/** Streaming this long without a failure counts as healthy even without progress (an idle slot). */
export const STREAM_HEALTHY_MS = 30_000;

export class ReconnectBackoff {
  private attempt = 0;
  private startedAt: number | undefined;
  private startedFrom: Lsn = 0n;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly healthyAfterMs: number = STREAM_HEALTHY_MS,
  ) {}

  /** Postgres started streaming from `confirmed`. */
  started(confirmed: Lsn, now: number = Date.now()): void {
    this.startedAt = now;
    this.startedFrom = confirmed;
  }

  /** An attempt failed (the stream ended, or Postgres could not be reached); `confirmed` is the
   * position confirmed by then. Returns the attempt's number since the last healthy stream and
   * how long to wait before the next one. */
  failed(confirmed: Lsn, now: number = Date.now()): { attempt: number; delayMs: number } {
    const started = this.startedAt;
    this.startedAt = undefined;
    if (started !== undefined && (confirmed > this.startedFrom || now - started >= this.healthyAfterMs)) this.attempt = 0;
    this.attempt += 1;
    return { attempt: this.attempt, delayMs: Math.min(this.maxMs, this.initialMs * 2 ** (this.attempt - 1)) };
  }
}
