/**
 * TLS to Postgres, as managed providers require it: a private server with `ssl = on`, a CA made in
 * the test and hostssl-only rules, so every connection that succeeds is encrypted. replicate
 * (stream, preflight, heartbeat), backfill (readers, and the snapshot-exporting replication
 * connection of --mode repair), verify (and its repair) and status all go through `verify-full`;
 * a wrong CA, node-postgres' strict `require` and a plain URL each fail in one sentence that names
 * the fix, with no stack trace and no "SECURITY WARNING".
 */
import { afterAll, expect, inject, it } from 'vitest';
import { freePort, type RunningPostgres } from '../../src/embedded/postgres.ts';
import { parseLsn } from '../../src/lsn.ts';
import { SOURCE_TABLES } from '../../src/schema/columns.ts';
import { connectPostgres } from '../../src/source/connection.ts';
import { PostgresTlsError } from '../../src/tls-errors.ts';
import { CLI_DATABASE, cliClickHouse } from '../support/backends.ts';
import { expectClickHouseEqualsPostgres } from '../support/backfill.ts';
import { cliWorkspace } from '../support/cli.ts';
import { freshPostgres, slotConfirmedLsn, unconfirmedInSlot, waitFor, waitForSlot, withDatabase } from '../support/databases.ts';
import { insertRuns, makeRun } from '../support/fixtures.ts';
import { CLIENT_CERT_DATABASE, makeCertificates, startTlsOnlyPostgres, withTls } from '../support/tls.ts';

const certs = makeCertificates();
let server: RunningPostgres;
const workspace = cliWorkspace('tls', {}, async () => {
  server = await startTlsOnlyPostgres(certs);
  const pgdb = await freshPostgres(withTls(server.url, { sslmode: 'verify-full', sslrootcert: certs.ca }));
  return {
    ...pgdb,
    close: async () => {
      await pgdb.close();
      await server.stop();
    },
  };
});
afterAll(() => certs.remove());

/** The workspace's URL (verify-full with the right CA) with other TLS parameters. */
const databaseUrl = (params: Record<string, string>): string => {
  const url = new URL(workspace.pgdb.url);
  for (const name of ['sslmode', 'sslrootcert', 'uselibpqcompat']) url.searchParams.delete(name);
  return withTls(url.toString(), params);
};

/** What every TLS failure must look like: the sentence, and nothing a person has to wade through. */
function expectOneSentence(output: string, sentence: RegExp): void {
  expect(output).toMatch(sentence);
  expect(output).not.toMatch(/^\s+at /m); // a stack trace
  expect(output).not.toContain('SECURITY WARNING');
  expect(output).not.toContain('BEGIN'); // no certificate or key material
}

const runs = (table: (typeof SOURCE_TABLES)[number], from: number, count: number) =>
  Array.from({ length: count }, (_, i) => makeRun({ table, index: from + i }));

it('replicate, backfill (both modes), verify and status work through sslmode=verify-full on a TLS-only server', async () => {
  const { sql } = workspace.pgdb;
  // Plain connections are refused over TCP: whatever succeeds below was encrypted and verified.
  for (const table of SOURCE_TABLES) await insertRuns(sql, table, runs(table, 0, 300));
  const all: string[] = [];
  const cli = async (args: string[], env: Record<string, string> = {}) => {
    const result = await workspace.cli(args, env).finished();
    all.push(result.output);
    expect(result.code, `${args.join(' ')}: ${result.output}`).toBe(0);
    return result.output;
  };
  await cli(['migrate']);

  const metricsPort = await freePort();
  const daemon = workspace.cli(['replicate'], { RUNS_CDC_HEARTBEAT_INTERVAL_MS: '50', RUNS_CDC_METRICS_PORT: String(metricsPort) });
  await waitForSlot(sql, workspace.slot, true);
  // The stream, the heartbeat and the metrics endpoint's connection (opened by a scrape) are all encrypted.
  await waitFor('/metrics to answer', () =>
    fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
      (r) => r.ok,
      () => false,
    ),
  );
  const encrypted = async () =>
    (
      await sql.query<{ application_name: string; ssl: boolean }>(
        `SELECT DISTINCT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.datname = current_database() AND a.application_name LIKE 'runs-cdc%' ORDER BY 1`,
      )
    ).rows;
  await waitFor('the heartbeat connection', async () => (await encrypted()).length === 3);
  expect(await encrypted()).toEqual([
    { application_name: 'runs-cdc', ssl: true },
    { application_name: 'runs-cdc heartbeat', ssl: true },
    { application_name: 'runs-cdc metrics', ssl: true },
  ]);
  for (const table of SOURCE_TABLES) await insertRuns(sql, table, runs(table, 300, 200));
  const written = parseLsn((await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]?.lsn as string);
  await waitFor('replicate to confirm the new runs', async () => (await slotConfirmedLsn(sql, workspace.slot)) >= written);
  daemon.child.kill('SIGTERM');
  expect(await daemon.exit, daemon.output()).toBe(0);
  all.push(daemon.output());
  expect(daemon.output()).not.toContain('could not write a heartbeat');
  expect(await unconfirmedInSlot(sql, workspace.slot, 'I')).toBe(0);

  expect(await cli(['backfill'])).toContain('SUCCESS');
  expect(await cli(['backfill', '--mode', 'repair'])).toContain('SUCCESS');
  await cli(['verify']);
  await cli(['verify', '--repair']);
  expect(await cli(['status'])).toContain('OK');
  expect(all.join('')).not.toContain('SECURITY WARNING');

  const ch = await cliClickHouse(workspace.chdbPath);
  try {
    expect(await expectClickHouseEqualsPostgres(workspace.pgdb, ch, CLI_DATABASE)).toBe(2 * 500);
  } finally {
    await ch.close();
  }
});

it.each([['status'], ['replicate'], ['backfill'], ['verify']])(
  '%s with a wrong CA in sslrootcert fails in one sentence that names sslrootcert',
  async (command) => {
    const { code, output } = await workspace
      .cli([command], { DATABASE_URL: databaseUrl({ sslmode: 'verify-full', sslrootcert: certs.wrongCa }) })
      .finished();
    expect(code).not.toBe(0);
    expectOneSentence(
      output,
      /Postgres at 127\.0\.0\.1:\d+ presented a certificate that the CA in DATABASE_URL's sslrootcert did not sign \([^)]+\): point sslrootcert at the CA/,
    );
  },
);

it("sslmode=require without a CA fails in one sentence naming sslrootcert and uselibpqcompat; with uselibpqcompat=true it connects like libpq's require", async () => {
  const strict = await workspace.cli(['status'], { DATABASE_URL: databaseUrl({ sslmode: 'require' }) }).finished();
  expect(strict.code).not.toBe(0);
  expectOneSentence(
    strict.output,
    /presented a certificate this machine does not trust .*: node-postgres verifies the certificate for every sslmode except disable and no-verify .* add sslrootcert=\/path\/to\/ca\.pem .* or uselibpqcompat=true/,
  );
  const libpq = await workspace.cli(['status'], { DATABASE_URL: databaseUrl({ sslmode: 'require', uselibpqcompat: 'true' }) }).finished();
  expect(libpq.output).not.toContain('certificate');
  expect(libpq.output).toMatch(/^slot /m);
  expect(libpq.output).not.toContain('SECURITY WARNING');
});

it('a URL without TLS parameters is told that the server takes only encrypted connections', async () => {
  const { code, output } = await workspace.cli(['status'], { DATABASE_URL: databaseUrl({}) }).finished();
  expect(code).not.toBe(0);
  expectOneSentence(output, /Postgres at 127\.0\.0\.1:\d+ accepts only encrypted connections .*: add sslmode=verify-full&sslrootcert=/);
});

it('an sslrootcert that cannot be read is named in one sentence, before any connection', async () => {
  const missing = `${certs.dir}/missing-ca.pem`;
  const { code, output } = await workspace
    .cli(['status'], { DATABASE_URL: databaseUrl({ sslmode: 'verify-full', sslrootcert: missing }) })
    .finished();
  expect(code).not.toBe(0);
  expectOneSentence(output, new RegExp(`DATABASE_URL's sslrootcert file ${missing} cannot be read \\(ENOENT\\)`));
});

it('a server that wants a client certificate gets sslcert and sslkey; without them one sentence names both', async () => {
  await workspace.pgdb.sql.query(`CREATE DATABASE ${CLIENT_CERT_DATABASE}`);
  const url = withDatabase(databaseUrl({ sslmode: 'verify-full', sslrootcert: certs.ca }), CLIENT_CERT_DATABASE);
  const client = await connectPostgres(withTls(url, { sslcert: certs.clientCert, sslkey: certs.clientKey }));
  try {
    const { rows } = await client.query<{ dn: string }>('SELECT client_dn AS dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(rows).toEqual([{ dn: '/CN=postgres' }]);
  } finally {
    await client.end();
  }
  const refused = connectPostgres(url);
  await expect(refused).rejects.toThrow(PostgresTlsError);
  await expect(refused).rejects.toThrow(
    /^Postgres at 127\.0\.0\.1:\d+ wants a client certificate \(.+\): add sslcert=\/path\/to\/client\.pem&sslkey=\/path\/to\/client\.key to DATABASE_URL$/,
  );
});

it('a server without TLS asked for TLS says so in one sentence', async () => {
  const refused = connectPostgres(withTls(inject('databaseUrl'), { sslmode: 'verify-full', sslrootcert: certs.ca }));
  await expect(refused).rejects.toThrow(PostgresTlsError);
  await expect(refused).rejects.toThrow(/^Postgres at 127\.0\.0\.1:\d+ does not accept TLS connections but DATABASE_URL asks for TLS: /);
});
