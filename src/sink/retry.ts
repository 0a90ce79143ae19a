/**
 * Retrying ClickHouse operations: transient failures (network, overload, too many parts) are
 * retried with capped exponential backoff and jitter; a failure no retry can fix, or running out
 * of retries, rejects with SinkFatalError, and nothing of that operation counts as done.
 */
import pRetry, { AbortError } from 'p-retry';
import { firstLine, RowRejectedError, SinkFatalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { classifyClickHouseError } from './errors.ts';

export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Retries of a transient failure before giving up; absent means without limit (the daemon). */
  maxRetries?: number;
}

export interface RetryStats {
  retries: number;
  retriesByReason: Record<string, number>;
}

export interface RetryContext {
  policy: RetryPolicy;
  log: Logger;
  stats: RetryStats;
  /** What the operation touches, for messages (e.g. the qualified table name). */
  target: string;
}

export async function withClickHouseRetry<T>(
  context: RetryContext,
  what: string,
  operation: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const { policy, log, stats, target } = context;
  const retries = policy.maxRetries ?? Number.POSITIVE_INFINITY;
  const failures: Record<string, number> = {};
  try {
    return await pRetry(
      async () => {
        try {
          return await operation();
        } catch (error) {
          const { transient, rowLevel, reason, fix, rowLevelAfterRetries, fatalAfterRetries } = classifyClickHouseError(error);
          const failed = (failures[reason] ?? 0) + 1;
          failures[reason] = failed;
          const blameRows = rowLevelAfterRetries !== undefined && failed > rowLevelAfterRetries;
          const giveUp = fatalAfterRetries !== undefined && failed > fatalAfterRetries;
          if (transient && !blameRows && !giveUp) throw error;
          if (rowLevel || blameRows) {
            throw new AbortError(
              new RowRejectedError(
                `ClickHouse rejected rows of ${what} (${target}, ${reason}): ${firstLine(error)}`,
                reason,
                firstLine(error),
              ),
            );
          }
          throw new AbortError(
            new SinkFatalError(
              `ClickHouse rejected ${what} (${target}, ${reason}): ${firstLine(error)} — ${fix ?? 'fix the table or the data (runs-cdc migrate creates the expected schema)'} and restart`,
            ),
          );
        }
      },
      {
        retries,
        minTimeout: policy.initialDelayMs,
        maxTimeout: policy.maxDelayMs,
        factor: 2,
        randomize: true,
        signal,
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          const { reason } = classifyClickHouseError(error);
          if (retriesLeft === 0) return;
          stats.retries += 1;
          stats.retriesByReason[reason] = (stats.retriesByReason[reason] ?? 0) + 1;
          log.warn(
            { attempt: attemptNumber, reason, err: firstLine(error) },
            `ClickHouse failed ${what}; retrying (nothing after it is acknowledged meanwhile)`,
          );
        },
      },
    );
  } catch (error) {
    if (error instanceof SinkFatalError || signal?.aborted) throw error;
    const { reason } = classifyClickHouseError(error);
    throw new SinkFatalError(`ClickHouse failed ${what} (${target}, ${reason}) ${retries + 1} times in a row: ${firstLine(error)}`);
  }
}
