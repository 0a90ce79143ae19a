/**
 * Every expected failure is one sentence with the fix and exit 2 (could not run), never a stack
 * trace: connection refused, a login Postgres refuses, an unknown host, invalid URLs, a port in
 * use, a bad listen host, slot names Postgres would refuse or cut, a bad --api-url, negative
 * counts, a held chDB directory (without the engine's own line first).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { freshPostgres, type TestPostgres } from '../support/databases.ts';

let pgdb: TestPostgres;
let held: net.Server;
let heldPort: number;
const chdbPath = mkdtempSync(join(tmpdir(), 'runs-cdc-failures-'));

beforeAll(async () => {
  pgdb = await freshPostgres();
  held = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => held.once('listening', resolve));
  heldPort = (held.address() as net.AddressInfo).port;
});
afterAll(async () => {
  held.close();
  await pgdb.close();
  rmSync(chdbPath, { recursive: true, force: true });
});

const withUrl = (change: Partial<Pick<URL, 'port' | 'username'>>) => Object.assign(new URL(pgdb.url), change).toString();

const CASES: Array<[string, () => Promise<{ args: string[]; env: Record<string, string> }>, RegExp]> = [
  [
    'Postgres refuses the connection',
    async () => ({ args: ['status'], env: { DATABASE_URL: withUrl({ port: '1' }) } }),
    /127\.0\.0\.1:1 refused the connection: is the server running/,
  ],
  [
    'Postgres refuses the login',
    async () => ({ args: ['verify'], env: { DATABASE_URL: withUrl({ username: 'no_such_role' }) } }),
    /Postgres refused: role "no_such_role" does not exist: check the user/,
  ],
  [
    'an unknown host',
    async () => ({ args: ['status'], env: { DATABASE_URL: 'postgres://u@no-such-host.invalid/db' } }),
    /host no-such-host\.invalid is not known \(DNS\)/,
  ],
  [
    'an invalid Postgres URL',
    async () => ({ args: ['status'], env: { DATABASE_URL: 'postgres://[zz]/db' } }),
    /--database-url \(DATABASE_URL\): is not a valid URL/,
  ],
  [
    'an invalid ClickHouse URL',
    async () => ({ args: ['replicate'], env: { CLICKHOUSE_URL: 'http://[zz]:8123' } }),
    /--clickhouse-url \(CLICKHOUSE_URL\): must be an http\(s\):\/\/ URL/,
  ],
  [
    'a port in use',
    async () => ({ args: ['serve', '--api-port', String(heldPort)], env: {} }),
    /port \d+ on 127\.0\.0\.1 is already in use: stop what listens there or pick another --api-port/,
  ],
  [
    'a bad listen host',
    async () => ({ args: ['serve', '--api-port', '0', '--listen-host', 'no-such-host.invalid'], env: {} }),
    /--listen-host "no-such-host\.invalid" is not an address of this machine/,
  ],
  [
    'an upper-case slot name',
    async () => ({ args: ['replicate', '--slot', 'UPPER'], env: {} }),
    /--slot \(RUNS_CDC_SLOT\): must be lower-case/,
  ],
  [
    'an 80-character slot name (never cut to 63)',
    async () => ({ args: ['replicate', '--slot', 's'.repeat(80)], env: {} }),
    /--slot \(RUNS_CDC_SLOT\): must be at most 63 characters/,
  ],
  [
    'a bad --api-url',
    async () => ({ args: ['runs', 'count', '--org', 'o', '--project', 'p', '--env', 'e', '--api-url', 'notaurl'], env: {} }),
    /--api-url "notaurl" is not a URL: give the API's address/,
  ],
  ['a negative count', async () => ({ args: ['demo', '--runs', '-5'], env: {} }), /--runs must be a positive integer \(got "-5"\)/],
  ['a negative batch size', async () => ({ args: ['replicate', '--batch-rows', '-5'], env: {} }), /--batch-rows \(RUNS_CDC_BATCH_ROWS\):/],
];

it.each(CASES)('%s: one sentence, exit 2, no stack', async (_name, setup, sentence) => {
  const { args, env } = await setup();
  const { code, output } = await runCli(args, { DATABASE_URL: pgdb.url, CHDB_PATH: chdbPath, LOG_LEVEL: 'warn', ...env }).finished();
  expect(output).toMatch(sentence);
  expect(output).not.toMatch(/\n\s+at /);
  expect(code, output).toBe(2);
});

it('a held chDB directory: the sentence alone, no engine line first, exit 2', async () => {
  // Another process holds the directory, as a running replicate would.
  const holder = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `const { connectClickHouse } = await import(${JSON.stringify(join(import.meta.dirname, '../../src/sink/clickhouse.ts'))});
       const c = await connectClickHouse({ chdbPath: ${JSON.stringify(chdbPath)} });
       await c.query({ query: 'SELECT 1' });
       process.stdout.write('holding\\n');
       setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      holder.stdout?.on('data', (d) => String(d).includes('holding') && resolve());
      holder.once('exit', () => reject(new Error('the holder exited')));
    });
    const { code, output } = await runCli(['runs', 'count', '--org', 'o', '--project', 'p', '--env', 'e'], {
      CHDB_PATH: chdbPath,
      LOG_LEVEL: 'warn',
    }).finished();
    expect(output).toMatch(/^runs-cdc: the chDB directory .* is open in another process \(pid \d+\)/);
    expect(output).not.toContain('DB::Exception');
    expect(code).toBe(2);
  } finally {
    holder.kill('SIGKILL');
  }
});
