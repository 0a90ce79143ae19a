/**
 * ClickHouse over https:// with a private CA (and mutual TLS): a tiny HTTPS server on 127.0.0.1
 * answers the client's ping and `SELECT 1` the way ClickHouse's HTTP interface does, with a
 * certificate signed by a CA made in the test, so only a client given that CA gets an answer.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openClickHouse } from '../../src/cli/runtime.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { clickHouseTls } from '../../src/sink/tls.ts';
import { ClickHouseTlsError } from '../../src/tls-errors.ts';
import { runCli } from '../support/cli.ts';
import { makeCertificates } from '../support/tls.ts';

interface FakeClickHouse {
  url: string;
  /** Common names of the client certificates presented, one per request. */
  clients: Array<string | undefined>;
  close(): Promise<void>;
}

/** `/ping` -> `Ok.`; a POSTed `SELECT 1 ... FORMAT JSONEachRow` -> `{"1":1}`, as ClickHouse answers. */
async function startFakeClickHouse(requireClientCert: boolean): Promise<FakeClickHouse> {
  const clients: Array<string | undefined> = [];
  const server = https.createServer(
    {
      cert: readFileSync(certs.serverCert),
      key: readFileSync(certs.serverKey),
      ca: readFileSync(certs.ca),
      requestCert: requireClientCert,
      rejectUnauthorized: requireClientCert,
    },
    (request, response) => {
      const peer = (request.socket as TLSSocket).getPeerCertificate();
      clients.push(typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined);
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        if (request.url === '/ping') {
          response.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end('Ok.\n');
        } else if (/^SELECT 1\b/.test(`${body}${new URL(request.url ?? '/', 'https://x').searchParams.get('query') ?? ''}`)) {
          response.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=UTF-8', 'X-ClickHouse-Format': 'JSONEachRow' });
          response.end('{"1":1}\n');
        } else {
          response.writeHead(404, { 'X-ClickHouse-Exception-Code': '47' }).end('Code: 47. DB::Exception: not a fake query\n');
        }
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    clients,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const certs = makeCertificates();
let plain: FakeClickHouse;
let mutual: FakeClickHouse;
beforeAll(async () => {
  plain = await startFakeClickHouse(false);
  mutual = await startFakeClickHouse(true);
});
afterAll(async () => {
  await plain?.close();
  await mutual?.close();
  certs.remove();
});

const config = (url: string, tls: Partial<Config> = {}): Config => loadConfig({ clickhouseUrl: url, logLevel: 'silent', ...tls }, {});

async function selectOne(settings: Config): Promise<unknown> {
  const client = await openClickHouse(settings);
  try {
    expect((await client.ping()).success).toBe(true);
    return await (await client.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
  } finally {
    await client.close();
  }
}

it('with --clickhouse-ca-cert the client trusts the private CA: ping and a query are answered', async () => {
  expect(await selectOne(config(plain.url, { clickhouseCaCert: certs.ca }))).toEqual([{ 1: 1 }]);
});

it('without the CA the certificate is not trusted: one sentence naming --clickhouse-ca-cert', async () => {
  const failure = openClickHouse(config(plain.url));
  await expect(failure).rejects.toThrow(ClickHouseTlsError);
  await expect(failure).rejects.toThrow(
    /^ClickHouse at 127\.0\.0\.1:\d+ presented a certificate this machine does not trust \(.+\): give the server's CA with --clickhouse-ca-cert \(CLICKHOUSE_CA_CERT\)$/,
  );
});

it('a wrong CA fails in one sentence, without a stack trace or certificate text', async () => {
  const { code, output } = await runCli(['migrate'], { CLICKHOUSE_URL: plain.url, CLICKHOUSE_CA_CERT: certs.wrongCa }).finished();
  expect(code).toBe(2); // could not run
  expect(output.trim()).toMatch(
    /^runs-cdc: ClickHouse at 127\.0\.0\.1:\d+ presented a certificate that the CA in --clickhouse-ca-cert \(CLICKHOUSE_CA_CERT\) did not sign \(.+\): give the CA that signed the server's certificate$/,
  );
  expect(output).not.toMatch(/^\s+at /m);
  expect(output).not.toContain('BEGIN');
});

it('mutual TLS: the client certificate and key are presented; without them the server refuses in one sentence', async () => {
  const withCert = config(mutual.url, {
    clickhouseCaCert: certs.ca,
    clickhouseClientCert: certs.clientCert,
    clickhouseClientKey: certs.clientKey,
  });
  expect(await selectOne(withCert)).toEqual([{ 1: 1 }]);
  expect(mutual.clients.length).toBeGreaterThan(0);
  expect(new Set(mutual.clients)).toEqual(new Set(['postgres']));
  const failure = openClickHouse(config(mutual.url, { clickhouseCaCert: certs.ca }));
  await expect(failure).rejects.toThrow(ClickHouseTlsError);
  await expect(failure).rejects.toThrow(
    /^ClickHouse at 127\.0\.0\.1:\d+ wants a client certificate \(tlsv13 alert certificate required\): give --clickhouse-client-cert and --clickhouse-client-key/,
  );
});

it('TLS settings that cannot apply are one sentence each, naming the flag and never the file content', () => {
  const http = 'http://127.0.0.1:8123';
  expect(() => clickHouseTls({ clickhouseCaCert: certs.ca }, http)).toThrow(ConfigError);
  expect(() => clickHouseTls({ clickhouseCaCert: certs.ca }, http)).toThrow(
    /apply to a ClickHouse server over TLS: set CLICKHOUSE_URL to its https:\/\/ URL/,
  );
  expect(() => clickHouseTls({ clickhouseCaCert: certs.ca }, undefined)).toThrow(ConfigError);
  expect(() => clickHouseTls({ clickhouseClientCert: certs.clientCert }, plain.url)).toThrow('go together: give both, or neither');
  const missing = `${certs.dir}/missing.key`;
  expect(() => clickHouseTls({ clickhouseClientCert: certs.clientCert, clickhouseClientKey: missing }, plain.url)).toThrow(
    `--clickhouse-client-key (CLICKHOUSE_CLIENT_KEY): the file ${missing} cannot be read (ENOENT)`,
  );
  expect(clickHouseTls({}, plain.url)).toBeUndefined();
});
