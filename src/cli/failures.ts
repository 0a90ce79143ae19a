/**
 * How a command ends, in one place. Exit codes, one meaning each:
 * - 0: done, healthy, equal;
 * - 1: a finding (verify found differences, status found a problem, a backfill ended FAILURE,
 *   dead letters refused again) — set by the command itself through `process.exitCode`;
 * - 2: could not run (a usage mistake, bad configuration, a server unreachable or refusing the
 *   login, a port taken, the chDB directory held, or a bug).
 * An expected failure prints one sentence with the fix; only an unexpected error (a bug) prints
 * its stack.
 */
import type { CommanderError } from 'commander';
import { firstLine, RunsCdcError } from '../errors.ts';
import { tlsFailure } from '../tls-errors.ts';

export const EXIT_OK = 0;
export const EXIT_FINDING = 1;
export const EXIT_COULD_NOT_RUN = 2;

interface SystemError {
  code?: string;
  address?: string;
  port?: number;
  hostname?: string;
  errors?: SystemError[];
}

const URLS = 'DATABASE_URL / --database-url and CLICKHOUSE_URL / --clickhouse-url';

/** Postgres error codes (SQLSTATE) a person fixes in the URL or the server's setup. */
const PG_LOGIN: Record<string, string> = {
  '28P01': 'check the user and password in DATABASE_URL',
  '28000': 'check the user in DATABASE_URL and the server pg_hba.conf',
  '3D000': 'check the database name in DATABASE_URL',
  '53300': 'the server has no free connections: raise max_connections or stop idle clients',
  '57P03': 'the server is starting up or shutting down: try again in a moment',
  '42501': 'the user lacks a privilege runs-cdc needs (REPLICATION, or ownership of the tables): grant it',
};

/** One sentence for a failure a person can fix, or undefined for a bug. */
export function expectedFailure(error: unknown): string | undefined {
  if (error instanceof RunsCdcError) return error.message;
  if (!(error instanceof Error)) return undefined;
  const system = error as Error & SystemError;
  const code = system.code ?? system.errors?.[0]?.code;
  const where = system.address ?? system.errors?.[0]?.address;
  const port = system.port ?? system.errors?.[0]?.port;
  const at = where ? `${where}${port ? `:${port}` : ''}` : 'the server';
  switch (code) {
    case 'ECONNREFUSED':
      return `${at} refused the connection: is the server running, and do ${URLS} point at it?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `host ${system.hostname ?? at} is not known (DNS): check the host in ${URLS}`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${at} cannot be reached (${code}): check the host and the network, and ${URLS}`;
    case 'ECONNRESET':
      return `${at} closed the connection (ECONNRESET): check that the URL points at the right server and port`;
    case 'ERR_INVALID_URL':
      return `a URL is not valid: check ${URLS}`;
  }
  // Connections the TLS sentences of tls-errors.ts did not wrap (the replication stream's, the heartbeat's).
  const tls = tlsFailure(error);
  if (tls?.kind === 'untrusted') {
    return `the server's TLS certificate is not trusted (${tls.reason}): set NODE_EXTRA_CA_CERTS to its CA, or sslrootcert in DATABASE_URL`;
  }
  if (code && code in PG_LOGIN) return `Postgres refused: ${firstLine(error)}: ${PG_LOGIN[code]}`;
  // pg's SASL errors when the server asks for a password the URL does not hold.
  if (/^SASL: /.test(error.message) || /password must be a string/.test(error.message)) {
    return `Postgres asked for a password the URL does not give (${firstLine(error)}): put it in DATABASE_URL`;
  }
  return undefined;
}

/** Commander's own ends: help and the version exit 0, a usage mistake (unknown flag, missing value) 2. */
export function commanderExitCode(error: CommanderError): number {
  return ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code) ? EXIT_OK : EXIT_COULD_NOT_RUN;
}
