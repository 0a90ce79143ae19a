/**
 * Certificates and servers for the TLS tests: a CA made on the spot with the `openssl` command
 * line (Node's crypto cannot sign certificates), a second CA that signed nothing the servers
 * present (the "wrong CA"), and a Postgres that takes only TLS connections over TCP.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningPostgres, startPostgres } from '../../src/embedded/postgres.ts';

export interface TestCertificates {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** Another CA, which signed nothing the servers present. */
  wrongCa: string;
  /** Server certificate and key for 127.0.0.1 and localhost. */
  serverCert: string;
  serverKey: string;
  /** Client certificate and key (CN postgres) for mutual TLS. */
  clientCert: string;
  clientKey: string;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: 'pipe' });
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'openssl is not installed (apt-get install -y openssl)' : String(error);
    throw new Error(`could not make test certificates: ${reason}`);
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): void {
  openssl(
    ['req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=runs-cdc test ${name}`].concat(
      ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    ),
    dir,
  );
}

function makeLeaf(dir: string, name: string, subject: string, altNames: string, usage: 'serverAuth' | 'clientAuth'): void {
  openssl(['req', '-new', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${subject}`], dir);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${altNames}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=${usage}\n`);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2'].concat([
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.pem`,
    ]),
    dir,
  );
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'runs-cdc-tls-'));
  makeCa(dir, 'ca');
  makeCa(dir, 'wrong-ca');
  makeLeaf(dir, 'server', '127.0.0.1', 'IP:127.0.0.1,DNS:localhost', 'serverAuth');
  makeLeaf(dir, 'client', 'postgres', 'DNS:runs-cdc-client', 'clientAuth');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    wrongCa: join(dir, 'wrong-ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The database of a TLS-only server that also wants a client certificate naming the user. */
export const CLIENT_CERT_DATABASE = 'runs_client_cert';

/** Over TCP only TLS connections are accepted (no `hostnossl` rule: a plain one is refused). */
const TLS_ONLY_HBA = [
  'local all all trust',
  `hostssl ${CLIENT_CERT_DATABASE} all 127.0.0.1/32 trust clientcert=verify-full`,
  'hostssl all all 127.0.0.1/32 trust',
  'hostssl replication all 127.0.0.1/32 trust',
  '',
];

/** A private Postgres with `ssl = on` and hostssl-only rules; its `url` carries no TLS parameters. */
export function startTlsOnlyPostgres(certs: TestCertificates): Promise<RunningPostgres> {
  return startPostgres({
    settings: ['ssl=on', 'ssl_cert_file=server.crt', 'ssl_key_file=server.key', 'ssl_ca_file=ca.crt'],
    dataFiles: {
      'server.crt': readFileSync(certs.serverCert, 'utf8'),
      'server.key': readFileSync(certs.serverKey, 'utf8'),
      'ca.crt': readFileSync(certs.ca, 'utf8'),
      'pg_hba.conf': TLS_ONLY_HBA.join('\n'),
    },
  });
}

/** `url` with TLS parameters added (e.g. `{ sslmode: 'verify-full', sslrootcert: certs.ca }`). */
export function withTls(url: string, params: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [name, value] of Object.entries(params)) parsed.searchParams.set(name, value);
  return parsed.toString();
}
