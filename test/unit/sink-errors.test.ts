import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { RowRejectedError, SinkFatalError } from '../../src/errors.ts';
import { silentLogger } from '../../src/logger.ts';
import { classifyClickHouseError, MEMORY_RETRIES, TIMEOUT_RETRIES } from '../../src/sink/errors.ts';
import { withClickHouseRetry } from '../../src/sink/retry.ts';

const serverError = (code: string, type: string) => new ClickHouseError({ message: type, code, type });

it('server overload and network errors are transient', () => {
  expect(classifyClickHouseError(serverError('252', 'TOO_MANY_PARTS'))).toEqual({
    transient: true,
    rowLevel: false,
    reason: 'TOO_MANY_PARTS',
  });
  expect(classifyClickHouseError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toEqual({
    transient: true,
    reason: 'ECONNREFUSED',
  });
});

it('schema, auth and data errors are fatal; only data errors blame rows (dead letters)', () => {
  for (const [code, type, rowLevel] of [
    ['60', 'UNKNOWN_TABLE', false],
    ['16', 'NO_SUCH_COLUMN_IN_TABLE', false],
    ['117', 'INCORRECT_DATA', true],
    ['469', 'VIOLATED_CONSTRAINT', true],
    ['516', 'AUTHENTICATION_FAILED', false],
  ] as const) {
    expect(classifyClickHouseError(serverError(code, type))).toEqual({ transient: false, rowLevel, reason: type });
  }
});

it("chDB's own copy of ClickHouseError is recognised too", () => {
  // chDB bundles another @clickhouse/client-common: same class name, different class.
  class ClickHouseErrorCopy extends Error {
    code = '60';
    type = 'UNKNOWN_TABLE';
  }
  Object.defineProperty(ClickHouseErrorCopy, 'name', { value: 'ClickHouseError' });
  expect(classifyClickHouseError(new ClickHouseErrorCopy('no table'))).toEqual({
    transient: false,
    rowLevel: false,
    reason: 'UNKNOWN_TABLE',
  });
});

it('a partition-count failure shares TOO_MANY_PARTS’ code but is fatal, with what to change', () => {
  const error = new ClickHouseError({
    message:
      "Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting. ",
    code: '252',
    type: 'TOO_MANY_PARTS',
  });
  expect(classifyClickHouseError(error)).toMatchObject({ transient: false, rowLevel: false, reason: 'TOO_MANY_PARTITIONS' });
  expect(classifyClickHouseError(error).fix).toMatch(/max_partitions_per_insert_block .* --batch-rows/);
});

it('a memory limit is retried a few times, then blamed on the rows', () => {
  expect(classifyClickHouseError(serverError('241', 'MEMORY_LIMIT_EXCEEDED'))).toEqual({
    transient: true,
    reason: 'MEMORY_LIMIT_EXCEEDED',
    rowLevelAfterRetries: MEMORY_RETRIES,
  });
});

it.each([
  ['401 Unauthorized'],
  ['<html><head><title>401 Authorization Required</title></head><body><center><h1>401 Authorization Required</h1></center></body></html>'],
  ['<html><head><title>403 Forbidden</title></head></html>'],
  ['Forbidden'],
])('a proxy refusing the request (%s) is fatal, with what to check', (body) => {
  // The client turns a non-ClickHouse error body into a plain Error carrying that body.
  expect(classifyClickHouseError(new Error(body))).toMatchObject({ transient: false, rowLevel: false, reason: 'HTTP_AUTH' });
});

it('a proxy’s 502 or a reset connection stays transient', () => {
  expect(classifyClickHouseError(new Error('<html><title>502 Bad Gateway</title></html>')).transient).toBe(true);
  expect(classifyClickHouseError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })).transient).toBe(true);
});

describe('withClickHouseRetry', () => {
  const context = () => ({
    policy: { initialDelayMs: 1, maxDelayMs: 1 },
    log: silentLogger,
    stats: { retries: 0, retriesByReason: {} },
    target: 'db.t',
  });

  it('a write that keeps running out of memory is refused as rows (split; one row goes to dead letters)', async () => {
    let attempts = 0;
    const failing = () => {
      attempts += 1;
      return Promise.reject(serverError('241', 'MEMORY_LIMIT_EXCEEDED'));
    };
    await expect(withClickHouseRetry(context(), 'an insert of 1 rows', failing)).rejects.toBeInstanceOf(RowRejectedError);
    expect(attempts).toBe(MEMORY_RETRIES + 1);
  });

  it('memory pressure that passes is only retried', async () => {
    let attempts = 0;
    const passing = () => (++attempts < 3 ? Promise.reject(serverError('241', 'MEMORY_LIMIT_EXCEEDED')) : Promise.resolve('ok'));
    await expect(withClickHouseRetry(context(), 'an insert', passing)).resolves.toBe('ok');
  });

  it('a read that keeps running into max_execution_time stops with what to raise, instead of retrying forever', async () => {
    let attempts = 0;
    const slow = () => {
      attempts += 1;
      return Promise.reject(serverError('159', 'TIMEOUT_EXCEEDED'));
    };
    await expect(withClickHouseRetry(context(), 'reading live rows for a TRUNCATE', slow)).rejects.toThrow(
      /TIMEOUT_EXCEEDED.*raise --clickhouse-request-timeout/,
    );
    expect(attempts).toBe(TIMEOUT_RETRIES + 1);
  });

  it('a proxy’s 401 stops at once, even without a retry limit', async () => {
    let attempts = 0;
    const refused = () => {
      attempts += 1;
      return Promise.reject(new Error('401 Unauthorized'));
    };
    const rejection = expect(withClickHouseRetry(context(), 'an insert', refused)).rejects;
    await rejection.toBeInstanceOf(SinkFatalError);
    await expect(withClickHouseRetry(context(), 'an insert', refused)).rejects.toThrow(
      /HTTP 401\/403\): check the user and password in CLICKHOUSE_URL/,
    );
    expect(attempts).toBe(2);
  });
});
