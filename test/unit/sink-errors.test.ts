import { ClickHouseError } from '@clickhouse/client';
import { expect, it } from 'vitest';
import { classifyClickHouseError } from '../../src/sink/errors.ts';

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
