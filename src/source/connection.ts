/**
 * Every Postgres connection runs-cdc opens (replication stream, preflight, heartbeat, metrics,
 * backfill readers and the connection exporting their snapshot, verify, status, the demo) takes its
 * settings from here, so the TLS parameters of DATABASE_URL mean the same thing on all of them.
 *
 * TLS parameters, as node-postgres 8 reads them:
 * - `sslmode`: `disable` (no TLS), `no-verify` (TLS, certificate not checked), and `prefer`,
 *   `require`, `verify-ca`, `verify-full`, which all mean verify-full: the certificate must chain
 *   to a trusted CA and name the host. This is not libpq's `require` (encrypt, check nothing).
 * - `uselibpqcompat=true`: libpq's meanings instead: `require` encrypts without checking (or checks
 *   the CA only, with `sslrootcert`), `verify-ca` checks the CA but not the name, `prefer` does not
 *   check (but, unlike libpq, does not fall back to plain text either).
 * - `sslrootcert`, `sslcert`, `sslkey`: paths of PEM files (the CA, and a client certificate and
 *   key for servers that want one), read when the connection settings are built.
 *
 * node-postgres prints a multi-line "SECURITY WARNING" on stderr for `prefer`/`require`/
 * `verify-ca` without `uselibpqcompat`; the same settings are reached here by naming the mode it
 * applies (verify-full), so nothing changes but the noise.
 */
import { accessSync, constants } from 'node:fs';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { ConfigError } from '../errors.ts';
import { postgresTlsError, queryOf } from '../tls-errors.ts';

const SSL_MODES = new Set(['disable', 'no-verify', 'prefer', 'require', 'verify-ca', 'verify-full']);
/** What node-postgres 8 does for these without uselibpqcompat: verify-full. */
const VERIFY_FULL_ALIASES = new Set(['prefer', 'require', 'verify-ca']);
const FILE_PARAMETERS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * node-postgres settings for `url` honouring its TLS parameters, with `extra` (application_name,
 * replication, pool sizes, type parsers) on top. Throws a ConfigError sentence for an sslmode
 * node-postgres does not know or a certificate file that cannot be read.
 */
export function postgresConfig(url: string, extra: pg.PoolConfig = {}): pg.PoolConfig {
  // The query string alone: pg-connection-string accepts URLs the URL class does not (a socket
  // directory after `@/`), and the rest of the URL is its business.
  const params = queryOf(url);
  const sslmode = params.get('sslmode');
  if (sslmode !== null && !SSL_MODES.has(sslmode)) {
    throw new ConfigError(
      `DATABASE_URL has sslmode=${sslmode}, which node-postgres does not know: use disable, no-verify, prefer, require, verify-ca or verify-full`,
    );
  }
  for (const name of FILE_PARAMETERS) {
    const path = params.get(name);
    if (path === null) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError(
        `DATABASE_URL's ${name} file ${path} cannot be read (${code}): give the path of a PEM file this process can read`,
      );
    }
  }
  const libpq = params.get('uselibpqcompat') === 'true';
  if (libpq && sslmode === 'verify-ca' && !params.has('sslrootcert')) {
    throw new ConfigError('sslmode=verify-ca checks the server against a CA you give: add sslrootcert=/path/to/ca.pem to DATABASE_URL');
  }
  const connectionString =
    !libpq && sslmode !== null && VERIFY_FULL_ALIASES.has(sslmode) ? url.replace(/([?&]sslmode=)[^&#]*/g, '$1verify-full') : url;
  return { ...parseIntoClientConfig(connectionString), ...extra };
}

/**
 * A connected client for `url` (settings from postgresConfig). A TLS failure (untrusted or
 * mismatched certificate, a server without TLS or one that takes only TLS) rejects with a
 * PostgresTlsError sentence naming the DATABASE_URL parameter that fixes it; other failures as pg
 * reports them.
 */
export async function connectPostgres(url: string, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client(postgresConfig(url, extra));
  try {
    await client.connect();
  } catch (error) {
    throw postgresTlsError(error, url) ?? error;
  }
  return client;
}

/** `use` an ordinary connection opened for it, ended however `use` ends. */
export async function withPostgres<T>(url: string, use: (sql: pg.Client) => Promise<T>, extra: pg.ClientConfig = {}): Promise<T> {
  const sql = await connectPostgres(url, extra);
  try {
    return await use(sql);
  } finally {
    await sql.end();
  }
}
