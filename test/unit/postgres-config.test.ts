/**
 * postgresConfig: what each sslmode means to node-postgres (and with uselibpqcompat=true to libpq),
 * read without node-postgres' multi-line "SECURITY WARNING" on stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.ts';
import { postgresConfig } from '../../src/source/connection.ts';

const dir = mkdtempSync(join(tmpdir(), 'runs-cdc-pgconfig-'));
const ca = join(dir, 'ca.pem');
writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BASE = 'postgres://u:secret@db.example.com:5432/platform';
const ssl = (query: string) => postgresConfig(`${BASE}?${query}`).ssl;

it('without uselibpqcompat, prefer, require and verify-ca verify like verify-full, and nothing is printed', async () => {
  const warnings: string[] = [];
  const listener = (warning: Error) => warnings.push(warning.message);
  process.on('warning', listener);
  try {
    for (const mode of ['prefer', 'require', 'verify-ca', 'verify-full']) {
      const config = ssl(`sslmode=${mode}&sslrootcert=${ca}`);
      expect(config, mode).toMatchObject({ ca: expect.stringContaining('BEGIN CERTIFICATE') });
      expect((config as { rejectUnauthorized?: boolean }).rejectUnauthorized, mode).toBeUndefined();
    }
    await new Promise((resolve) => setImmediate(resolve)); // process.emitWarning reports on the next tick
  } finally {
    process.off('warning', listener);
  }
  expect(warnings).toEqual([]);
});

it("with uselibpqcompat=true, require encrypts without verifying (libpq's meaning)", () => {
  expect(ssl('sslmode=require&uselibpqcompat=true')).toMatchObject({ rejectUnauthorized: false });
  expect(ssl('sslmode=no-verify')).toMatchObject({ rejectUnauthorized: false });
});

it('disable and no TLS parameters at all mean no TLS; the URL, user and password carry over', () => {
  expect(ssl('sslmode=disable')).toBe(false);
  const config = postgresConfig(BASE, { application_name: 'runs-cdc test' });
  expect(config.ssl).toBeUndefined();
  expect(config).toMatchObject({ host: 'db.example.com', port: 5432, database: 'platform', user: 'u', password: 'secret' });
  expect(config.application_name).toBe('runs-cdc test');
});

it('client certificate and key files are read into the TLS options', () => {
  const config = ssl(`sslmode=verify-full&sslrootcert=${ca}&sslcert=${ca}&sslkey=${ca}`) as Record<string, string>;
  expect(config.cert).toContain('BEGIN CERTIFICATE');
  expect(config.key).toContain('BEGIN CERTIFICATE');
});

it('an unknown sslmode, an unreadable file and libpq verify-ca without a CA are one sentence each', () => {
  expect(() => ssl('sslmode=requir')).toThrow(ConfigError);
  expect(() => ssl('sslmode=requir')).toThrow('DATABASE_URL has sslmode=requir, which node-postgres does not know');
  expect(() => ssl(`sslmode=verify-full&sslkey=${dir}/nope.key`)).toThrow(
    `DATABASE_URL's sslkey file ${dir}/nope.key cannot be read (ENOENT)`,
  );
  expect(() => ssl('sslmode=verify-ca&uselibpqcompat=true')).toThrow('add sslrootcert=/path/to/ca.pem');
  expect(() => ssl('sslmode=verify-ca&uselibpqcompat=true')).not.toThrow(/SECURITY WARNING/);
});

it('a socket directory after @/ (which the URL class refuses) still works, with its TLS parameters read', () => {
  const config = postgresConfig('postgres://u@/platform?host=/var/run/postgresql&sslmode=disable');
  expect(config).toMatchObject({ host: '/var/run/postgresql', database: 'platform', user: 'u', ssl: false });
  expect(() => postgresConfig('postgres://u@/platform?host=/tmp&sslmode=verify-everything')).toThrow(ConfigError);
});
