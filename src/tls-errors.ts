/**
 * TLS failures as sentences a person can act on. Node reports a refused certificate as a bare
 * `self-signed certificate in certificate chain` (and node-postgres adds a stack trace); these
 * functions recognise such errors, on Postgres and ClickHouse connections alike, and say what is
 * wrong and which setting fixes it. They never print a certificate, a key or a password: only the
 * host and port, the setting's name and Node's one-line reason.
 */
import { RunsCdcError } from './errors.ts';

/** Postgres refused or failed a TLS connection; the message names the DATABASE_URL parameter to change. */
export class PostgresTlsError extends RunsCdcError {
  override name = 'PostgresTlsError';
}

/** ClickHouse's certificate (or ours) was refused; the message names the flag to change. */
export class ClickHouseTlsError extends RunsCdcError {
  override name = 'ClickHouseTlsError';
}

type TlsFailureKind = 'untrusted' | 'hostname' | 'validity' | 'handshake';

/** OpenSSL's verify results for a chain that does not end at a trusted CA. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'CERT_CHAIN_TOO_LONG',
]);
const VALIDITY = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

interface TlsFailure {
  kind: TlsFailureKind;
  /** Node's own one-line reason, e.g. "self-signed certificate in certificate chain". */
  reason: string;
}

/** The TLS failure behind `error` (or one of its causes), if it is one. */
export function tlsFailure(error: unknown): TlsFailure | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    // OpenSSL errors carry a short `reason` ("tlsv13 alert certificate required") besides a long message.
    const short = (e as { reason?: unknown }).reason;
    const reason = typeof short === 'string' && /^ERR_SSL_/.test(String(code)) ? short : (e.message.split('\n')[0] ?? '');
    if (typeof code !== 'string') continue;
    if (UNTRUSTED.has(code)) return { kind: 'untrusted', reason };
    if (VALIDITY.has(code)) return { kind: 'validity', reason };
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { kind: 'hostname', reason };
    if (/^(ERR_SSL_|ERR_OSSL_|ERR_TLS_)/.test(code) || code === 'EPROTO') return { kind: 'handshake', reason };
  }
  return undefined;
}

/** `host:port` of a URL, nothing else of it (no user, password or parameters). */
export function hostOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname;
  } catch {
    return 'the configured host';
  }
}

/** SQLSTATE invalid_authorization_specification: pg_hba.conf refused the connection. */
const INVALID_AUTHORIZATION = '28000';

/**
 * A connection failure to Postgres as one sentence when TLS caused it: a certificate this machine
 * does not trust (the usual `sslmode=require` surprise: node-postgres 8 verifies it, libpq does
 * not), a name or date mismatch, a server without TLS, a server that takes only TLS or only
 * client certificates. Undefined for anything else.
 */
export function postgresTlsError(error: unknown, url: string): PostgresTlsError | undefined {
  const where = `Postgres at ${hostOf(url)}`;
  const params = queryOf(url);
  const failure = tlsFailure(error);
  if (failure?.kind === 'untrusted') {
    if (params.has('sslrootcert')) {
      return new PostgresTlsError(
        `${where} presented a certificate that the CA in DATABASE_URL's sslrootcert did not sign (${failure.reason}): point sslrootcert at the CA that signed the server's certificate (managed providers publish theirs)`,
      );
    }
    return new PostgresTlsError(
      `${where} presented a certificate this machine does not trust (${failure.reason}): node-postgres verifies the certificate for every sslmode except disable and no-verify (require and verify-ca mean verify-full), so add sslrootcert=/path/to/ca.pem with the server's CA to DATABASE_URL, or uselibpqcompat=true for libpq's sslmode=require (encrypted but not verified)`,
    );
  }
  if (failure?.kind === 'hostname') {
    return new PostgresTlsError(
      `${where} presented a certificate for other host names (${failure.reason}): connect by a name the certificate lists, or add uselibpqcompat=true&sslmode=verify-ca with sslrootcert to check the CA but not the name`,
    );
  }
  if (failure?.kind === 'validity') {
    return new PostgresTlsError(
      `${where} presented a certificate outside its validity period (${failure.reason}): renew the server's certificate or correct this machine's clock`,
    );
  }
  if (failure?.kind === 'handshake') {
    return new PostgresTlsError(
      `the TLS handshake with ${where} failed (${failure.reason}): check sslmode, and sslcert/sslkey if the server wants a client certificate, in DATABASE_URL`,
    );
  }
  if (!(error instanceof Error)) return undefined;
  if (error.message === 'The server does not support SSL connections') {
    return new PostgresTlsError(
      `${where} does not accept TLS connections but DATABASE_URL asks for TLS: set ssl = on on the server, or use sslmode=disable`,
    );
  }
  if ((error as { code?: string }).code === INVALID_AUTHORIZATION) {
    if (/no encryption/.test(error.message)) {
      return new PostgresTlsError(
        `${where} accepts only encrypted connections (${error.message}): add sslmode=verify-full&sslrootcert=/path/to/ca.pem to DATABASE_URL`,
      );
    }
    if (/certificate/.test(error.message)) {
      return new PostgresTlsError(
        `${where} wants a client certificate (${error.message}): add sslcert=/path/to/client.pem&sslkey=/path/to/client.key to DATABASE_URL`,
      );
    }
  }
  return undefined;
}

/** What the ClickHouse client was given, by flag: decides which fix the sentence names. */
export interface ClickHouseTlsGiven {
  caCert: boolean;
  clientCert: boolean;
}

/** A ClickHouse request failure as one sentence when TLS caused it; undefined otherwise. */
export function clickHouseTlsError(error: unknown, url: string, given: ClickHouseTlsGiven): ClickHouseTlsError | undefined {
  const failure = tlsFailure(error);
  if (!failure) return undefined;
  const where = `ClickHouse at ${hostOf(url)}`;
  switch (failure.kind) {
    case 'untrusted':
      return new ClickHouseTlsError(
        given.caCert
          ? `${where} presented a certificate that the CA in --clickhouse-ca-cert (CLICKHOUSE_CA_CERT) did not sign (${failure.reason}): give the CA that signed the server's certificate`
          : `${where} presented a certificate this machine does not trust (${failure.reason}): give the server's CA with --clickhouse-ca-cert (CLICKHOUSE_CA_CERT)`,
      );
    case 'hostname':
      return new ClickHouseTlsError(
        `${where} presented a certificate for other host names (${failure.reason}): use a host name in CLICKHOUSE_URL that the certificate lists`,
      );
    case 'validity':
      return new ClickHouseTlsError(
        `${where} presented a certificate outside its validity period (${failure.reason}): renew the server's certificate or correct this machine's clock`,
      );
    case 'handshake':
      if (/certificate required/.test(failure.reason) && !given.clientCert) {
        return new ClickHouseTlsError(
          `${where} wants a client certificate (${failure.reason}): give --clickhouse-client-cert and --clickhouse-client-key (CLICKHOUSE_CLIENT_CERT, CLICKHOUSE_CLIENT_KEY)`,
        );
      }
      return new ClickHouseTlsError(
        `the TLS handshake with ${where} failed (${failure.reason}): check that CLICKHOUSE_URL says https:// for a TLS port${given.clientCert ? ' and that --clickhouse-client-cert/--clickhouse-client-key are a pair the server accepts' : ', and give --clickhouse-client-cert and --clickhouse-client-key if the server wants a client certificate'}`,
      );
  }
}

/** A connection URL's query parameters; read by hand, since `new URL` refuses socket-directory URLs. */
export function queryOf(url: string): URLSearchParams {
  const start = url.indexOf('?');
  return new URLSearchParams(start < 0 ? '' : url.slice(start + 1).split('#')[0]);
}
