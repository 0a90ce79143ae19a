/**
 * Passwords in DATABASE_URL and CLICKHOUSE_URL never reach output: not in logs, errors, status.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/postgres.ts';
import { runCli } from '../support/cli.ts';
import { freshPostgres, type TestPostgres } from '../support/databases.ts';

const PG_SECRET = 'pg-s3cret-value';
const CH_SECRET = 'ch-s3cret-value';
let pgdb: TestPostgres;

beforeAll(async () => {
  pgdb = await freshPostgres();
});
afterAll(async () => {
  await pgdb.close();
});

it.each([
  ['status'],
  ['status', '--json'],
  ['replicate'],
  ['backfill'],
  ['migrate'],
  ['runs', 'count', '--org', 'o', '--project', 'p', '--env', 'e'],
])('runs-cdc %s prints no password', async (...args) => {
  // The test server trusts any password; ClickHouse is a closed port, so every path errors out.
  const url = new URL(pgdb.url);
  url.password = PG_SECRET;
  const child = runCli(args, {
    DATABASE_URL: url.toString(),
    CLICKHOUSE_URL: `http://default:${CH_SECRET}@127.0.0.1:${await freePort()}`,
    LOG_LEVEL: 'debug',
  });
  const code = await child.exit;
  const output = child.output();
  expect(output.length).toBeGreaterThan(0);
  expect(code).not.toBe(0);
  expect(output).not.toContain(PG_SECRET);
  expect(output).not.toContain(CH_SECRET);
});
