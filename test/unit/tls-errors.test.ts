/**
 * TLS failures as sentences: which of Node's error codes mean which cause, and that nothing but
 * host and port of the URL is repeated (no user, password or parameters).
 */
import { expect, it } from 'vitest';
import { clickHouseTlsError, PostgresTlsError, postgresTlsError } from '../../src/tls-errors.ts';

const URL = 'postgres://runs:s3cret@db.example.com:5432/platform?sslmode=verify-full';
const failure = (code: string, message: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { code, ...extra });

it.each([
  ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain', /does not trust .*add sslrootcert=.*uselibpqcompat=true/],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate', /does not trust/],
  [
    'ERR_TLS_CERT_ALTNAME_INVALID',
    "Hostname/IP does not match certificate's altnames",
    /for other host names .*: connect by a name the certificate lists/,
  ],
  ['CERT_HAS_EXPIRED', 'certificate has expired', /outside its validity period \(certificate has expired\): renew/],
  ['EPROTO', 'write EPROTO', /^the TLS handshake with Postgres at db\.example\.com:5432 failed/],
])('%s is one sentence with its cause and fix', (code, message, sentence) => {
  const error = postgresTlsError(failure(code, message), URL);
  expect(error).toBeInstanceOf(PostgresTlsError);
  expect(error?.message).toMatch(sentence);
  expect(error?.message).toContain('Postgres at db.example.com:5432');
  expect(error?.message).not.toContain('s3cret');
  expect(error?.message).not.toContain('\n');
});

it('a TLS failure wrapped as the cause of another error is still recognised', () => {
  const wrapped = new Error('request failed', { cause: failure('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate') });
  expect(clickHouseTlsError(wrapped, 'https://default:pw@ch.example.com:8443', { caCert: false, clientCert: false })?.message).toBe(
    "ClickHouse at ch.example.com:8443 presented a certificate this machine does not trust (self-signed certificate): give the server's CA with --clickhouse-ca-cert (CLICKHOUSE_CA_CERT)",
  );
});

it('errors that are not about TLS are left alone', () => {
  expect(postgresTlsError(failure('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'), URL)).toBeUndefined();
  expect(postgresTlsError(failure('28P01', 'password authentication failed for user "runs"'), URL)).toBeUndefined();
  expect(
    clickHouseTlsError(failure('ECONNRESET', 'socket hang up'), 'https://ch:8443', { caCert: true, clientCert: false }),
  ).toBeUndefined();
});
