/**
 * TLS options of the ClickHouse client for an https:// CLICKHOUSE_URL: the CA that signed the
 * server's certificate (--clickhouse-ca-cert) and, for servers that want mutual TLS, a client
 * certificate and key (--clickhouse-client-cert, --clickhouse-client-key). The files are read
 * once, here; a problem is one sentence naming the flag and the path, never the file's content.
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { Config } from '../config.ts';
import { ConfigError } from '../errors.ts';

/** What @clickhouse/client takes as `tls` (its BasicTLSOptions / MutualTLSOptions). */
export type ClickHouseTls = { ca_cert: Buffer } | { ca_cert: Buffer; cert: Buffer; key: Buffer };

export type ClickHouseTlsSettings = Pick<Config, 'clickhouseCaCert' | 'clickhouseClientCert' | 'clickhouseClientKey'>;

const FLAGS = {
  clickhouseCaCert: '--clickhouse-ca-cert (CLICKHOUSE_CA_CERT)',
  clickhouseClientCert: '--clickhouse-client-cert (CLICKHOUSE_CLIENT_CERT)',
  clickhouseClientKey: '--clickhouse-client-key (CLICKHOUSE_CLIENT_KEY)',
} as const;

function readPem(settings: ClickHouseTlsSettings, key: keyof typeof FLAGS): Buffer | undefined {
  const path = settings[key];
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${FLAGS[key]}: the file ${path} cannot be read (${code}): give the path of a PEM file this process can read`);
  }
}

/**
 * The client's `tls` option for `url`, or undefined when no TLS setting is given. Without a CA
 * but with a client certificate, the system's CAs verify the server (the client needs some CA).
 */
export function clickHouseTls(settings: ClickHouseTlsSettings, url: string | undefined): ClickHouseTls | undefined {
  const given = Object.keys(FLAGS).filter((key) => settings[key as keyof typeof FLAGS] !== undefined);
  if (given.length === 0) return undefined;
  if (!url?.startsWith('https://')) {
    throw new ConfigError(
      `${given.map((key) => FLAGS[key as keyof typeof FLAGS]).join(', ')} apply to a ClickHouse server over TLS: set CLICKHOUSE_URL to its https:// URL, or drop them`,
    );
  }
  if ((settings.clickhouseClientCert === undefined) !== (settings.clickhouseClientKey === undefined)) {
    throw new ConfigError(`${FLAGS.clickhouseClientCert} and ${FLAGS.clickhouseClientKey} go together: give both, or neither`);
  }
  const ca_cert = readPem(settings, 'clickhouseCaCert') ?? Buffer.from(rootCertificates.join('\n'));
  const cert = readPem(settings, 'clickhouseClientCert');
  const key = readPem(settings, 'clickhouseClientKey');
  return cert && key ? { ca_cert, cert, key } : { ca_cert };
}
