/** The pure parts of the hardened surface: redaction, request-target parsing, token comparison, failure sentences. */
import { describe, expect, it } from 'vitest';
import { expectedFailure } from '../../src/cli/failures.ts';
import { RunsCdcError } from '../../src/errors.ts';
import { parseTarget, tokenMatches } from '../../src/http/server.ts';
import { redactSecrets } from '../../src/redact.ts';

describe('redactSecrets', () => {
  it.each([
    ['postgres://u:X@h/db', 'postgres://u:***@h/db'],
    ['http://h:8123/?user=u&password=X', 'http://h:8123/?user=u&password=***'],
    ['postgres://u@h/db?sslmode=require&password=X', 'postgres://u@h/db?sslmode=require&password=***'],
    ['http://h/?pass%77ord=X&a=1', 'http://h/?pass%77ord=***&a=1'],
    ['http://h/?password%3DX', 'http://h/?password%3D***'],
    ['http://h/?next=http%3A%2F%2Fh%2F%3Fpassword%3DX%26a%3D1', 'http://h/?next=http%3A%2F%2Fh%2F%3Fpassword%3D***%26a%3D1'],
    ['http://u%3AX@h/', 'http://u%3A***@h/'],
    ['host=h password=X user=u', 'host=h password=*** user=u'],
    ['?pwd=X&secret=X&token=X&api_key=X&sslpassword=X&pass=X', '?pwd=***&secret=***&token=***&api_key=***&sslpassword=***&pass=***'],
    ['{"msg":"at http://h/?password=X) failed"}', '{"msg":"at http://h/?password=***) failed"}'],
    ['org=o1&status=CRASHED', 'org=o1&status=CRASHED'],
  ])('%s', (input, output) => {
    expect(redactSecrets(input)).toBe(output);
  });
});

describe('parseTarget', () => {
  it('decodes the path and every parameter, keeping repetitions in order', () => {
    expect(parseTarget('/runs?org=o%201&tag=a+b&tag=c&root-only')).toEqual({
      path: '/runs',
      params: [
        ['org', 'o 1'],
        ['tag', 'a b'],
        ['tag', 'c'],
        ['root-only', ''],
      ],
    });
  });
  it.each(['http://[zz]/', '*', 'runs', '/runs?org=%', '/runs?org=%C3%28', '/%FF', '/runs?%zz=1'])(
    'refuses %s with a sentence',
    (target) => {
      expect(() => parseTarget(target)).toThrow(RunsCdcError);
    },
  );
});

it('tokenMatches compares whole tokens', () => {
  expect(tokenMatches('secret-token-123456', 'secret-token-123456')).toBe(true);
  expect(tokenMatches('secret-token-12345', 'secret-token-123456')).toBe(false);
  expect(tokenMatches('', 'secret-token-123456')).toBe(false);
});

it('expectedFailure: a sentence for what a person fixes, nothing for a bug (which keeps its stack)', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
    code: 'ECONNREFUSED',
    address: '127.0.0.1',
    port: 5432,
  });
  expect(expectedFailure(refused)).toMatch(/^127\.0\.0\.1:5432 refused the connection/);
  expect(expectedFailure(Object.assign(new Error('password authentication failed for user "u"'), { code: '28P01' }))).toMatch(
    /^Postgres refused: password authentication failed for user "u": check the user and password/,
  );
  expect(expectedFailure(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBeUndefined();
});
