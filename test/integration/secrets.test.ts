/**
 * Secrets never reach output: passwords in DATABASE_URL and CLICKHOUSE_URL, as userinfo
 * (`u:X@h`) or as a query parameter (`?password=X`, percent-encoded names too), and in an
 * echoed `--api-url`, are absent from every command's stdout, stderr and logs (debug level),
 * whether the connection works or fails.
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

const COMMANDS = [
  ['status'],
  ['status', '--json'],
  ['replicate'],
  ['backfill'],
  ['migrate'],
  ['verify'],
  ['runs', 'count', '--org', 'o', '--project', 'p', '--env', 'e'],
];

/** The two ways a URL carries a password. */
async function urls(form: 'userinfo' | 'query', postgresUp: boolean): Promise<Record<string, string>> {
  const pg = new URL(pgdb.url);
  if (!postgresUp) pg.port = String(await freePort());
  const chPort = await freePort(); // nothing listens: every path that needs ClickHouse fails
  if (form === 'userinfo') {
    pg.password = PG_SECRET;
    return { DATABASE_URL: pg.toString(), CLICKHOUSE_URL: `http://default:${CH_SECRET}@127.0.0.1:${chPort}` };
  }
  pg.searchParams.set('password', PG_SECRET);
  // A percent-encoded parameter name is still a password.
  return { DATABASE_URL: pg.toString(), CLICKHOUSE_URL: `http://127.0.0.1:${chPort}/?user=default&pass%77ord=${CH_SECRET}` };
}

for (const form of ['userinfo', 'query'] as const) {
  for (const postgresUp of [true, false]) {
    it.each(COMMANDS)(`runs-cdc %s prints no password (${form} form, Postgres ${postgresUp ? 'up' : 'down'})`, async (...args) => {
      const child = runCli(args, { ...(await urls(form, postgresUp)), LOG_LEVEL: 'debug' });
      const { code, output } = await child.finished();
      expect(output.length).toBeGreaterThan(0);
      expect(code, output).toBe(args[0] === 'status' && postgresUp ? 1 : 2); // status reports; the rest could not run
      expect(output).not.toContain(PG_SECRET);
      expect(output).not.toContain(CH_SECRET);
      expect(output).not.toMatch(/\n\s+at /); // and one sentence, not a stack
    });
  }
}

it('an --api-url with a password is never echoed', async () => {
  const child = runCli(
    ['runs', 'count', '--org', 'o', '--project', 'p', '--env', 'e', '--api-url', `http://user:${PG_SECRET}@127.0.0.1:${await freePort()}`],
    {
      LOG_LEVEL: 'debug',
    },
  );
  const { code, output } = await child.finished();
  expect(code).toBe(2);
  expect(output).toContain('http://user:***@127.0.0.1');
  expect(output).not.toContain(PG_SECRET);
});
