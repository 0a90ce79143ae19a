/**
 * The live page's routes under hostile input: seeded random paths, query strings and methods get a
 * 2xx/4xx answer (never a 5xx, never a file outside the page's list) and the process keeps serving;
 * what the page serves carries no password, even one inside a backfill job's failure message.
 */
import { expect, it } from 'vitest';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { oneTarget } from '../../src/queries/params.ts';
import { RunQueries } from '../../src/queries/run-queries.ts';
import { connectClickHouse } from '../../src/sink/clickhouse.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { clickhouseUrl, testClickHouse } from '../support/databases.ts';
import { prng as random } from '../support/fuzz.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 18);
const REQUESTS = 300;

const PATHS = ['/', '/live.json', '/runs', '/runs/count', '/runs/stats', '/runs/tags', '/assets/page.js', '/assets/uplot.js'];
const HOSTILE_PATHS = [
  '/assets/../../package.json',
  '/assets/%2e%2e/%2e%2e/package.json',
  '/assets/',
  '//etc/passwd',
  '/index.html',
  '/live.json/',
];
const NAMES = ['org', 'project', 'env', 'status', 'task', 'tag', 'period', 'from', 'to', 'limit', 'cursor', 'prefix', 'root-only', 'x'];
const VALUES = [
  'o1',
  'p1',
  'e1',
  'CRASHED',
  '7d',
  '-1',
  '1000',
  '2026-13-45',
  "'; DROP TABLE x; --",
  '\u0000',
  '%ff',
  'eyJkIjoibmV4dCJ9',
  '',
];

const env = freshEnvironmentPerTest();

it(`answers ${REQUESTS} random requests (seed ${SEED}) with 2xx or 4xx and leaks no password`, async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  const metrics = new DaemonMetrics();
  const replication = await env.start({}, { observer: metrics.observer });
  // A failed job whose message names a URL with a password, as an error from a driver might.
  await ch.insert({
    table: `${database}.backfill_jobs`,
    values: [
      {
        job_id: 'bf_20261129_secret',
        revision: 1,
        status: 'FAILURE',
        mode: 'default',
        params: '{}',
        rows_copied: 5,
        message: 'could not connect to postgres://runs:hunter2@db.internal:5432/platform',
        created_at: '2026-11-29 10:00:00.000',
        updated_at: '2026-11-29 10:00:00.000',
      },
    ],
    format: 'JSONEachRow',
  });
  // The explorer's queries on a connection of their own, as replicate opens them.
  const queryClient = await connectClickHouse({ url: clickhouseUrl(), chdbPath: ':memory:' });
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
    queries: oneTarget(new RunQueries(queryClient, database, { timeoutSeconds: 10, maxMemoryBytes: 2 ** 30 })),
  });
  try {
    const next = random(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
    const seen = new Map<number, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const path = next() < 0.2 ? pick(HOSTILE_PATHS) : pick(PATHS);
      const query = Array.from({ length: Math.floor(next() * 5) }, () => `${pick(NAMES)}=${encodeURIComponent(pick(VALUES))}`).join('&');
      const method = next() < 0.8 ? 'GET' : pick(['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']);
      const response = await fetch(`${ops.url}${path}${query ? `?${query}` : ''}`, { method });
      const body = await response.text();
      seen.set(response.status, (seen.get(response.status) ?? 0) + 1);
      expect([200, 400, 404, 405], `${method} ${path}?${query} -> ${response.status} ${body}`).toContain(response.status);
      expect(body).not.toContain('"name": "runs-cdc"'); // package.json never served
      expect(body).not.toContain('hunter2');
    }
    expect(seen.get(200)).toBeGreaterThan(0);
    expect(seen.get(400)).toBeGreaterThan(0);
    const live = (await (await fetch(`${ops.url}/live.json`)).json()) as { backfillJobs: { jobId: string; message: string }[] };
    expect(live.backfillJobs).toEqual([
      expect.objectContaining({ jobId: 'bf_20261129_secret', message: expect.stringContaining('runs:***@') }),
    ]);
    expect((await fetch(`${ops.url}/healthz`)).status).toBe(200);
  } finally {
    await ops.close();
    await queryClient.close();
  }
});

it("tokens on the ops port: --metrics-token guards everything but /healthz and the page's static files; --api-token alone guards the page's data, the explorer and /jobs", async () => {
  const { pgdb } = env;
  const ch = await testClickHouse();
  const replication = await env.start({});
  const routes = async (request: import('node:http').IncomingMessage, response: import('node:http').ServerResponse) => {
    if (request.url !== '/jobs') return false;
    response.end('{"ran":true}'); // stands in for cli/jobs.ts: reached only past the token checks
    return true;
  };
  const start = (tokens: { token?: string; dataToken?: string }) =>
    startTestOps(replication, ch, pgdb.url, { metrics: new DaemonMetrics(), routes, ...tokens }); // one registry per server
  const METRICS_TOKEN = 'metrics-token-0123456789';
  const API_TOKEN = 'api-token-0123456789abcdef';
  const status = async (url: string, path: string, token?: string, method = 'GET') =>
    (await fetch(`${url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} })).status;

  const guarded = await start({ token: METRICS_TOKEN, dataToken: API_TOKEN });
  try {
    for (const path of ['/metrics', '/readyz', '/live.json', '/runs?org=o&project=p&env=e']) {
      expect(await status(guarded.url, path), path).toBe(401);
    }
    expect(await status(guarded.url, '/jobs', undefined, 'POST')).toBe(401);
    expect(await status(guarded.url, '/healthz')).toBe(200);
    expect(await status(guarded.url, '/')).toBe(200);
    expect(await status(guarded.url, '/assets/page.js')).toBe(200);
    expect(await status(guarded.url, '/metrics', METRICS_TOKEN)).toBe(200);
    expect(await status(guarded.url, '/live.json', METRICS_TOKEN)).toBe(200);
    expect(await status(guarded.url, '/jobs', METRICS_TOKEN, 'POST')).toBe(200);
  } finally {
    await guarded.close();
  }

  const dataOnly = await start({ dataToken: API_TOKEN });
  try {
    expect(await status(dataOnly.url, '/metrics')).toBe(200); // Prometheus scrapes without a token
    expect(await status(dataOnly.url, '/readyz')).toBe(200);
    expect(await status(dataOnly.url, '/')).toBe(200);
    for (const path of ['/live.json', '/runs?org=o&project=p&env=e', '/runs/stats']) {
      expect(await status(dataOnly.url, path), path).toBe(401);
    }
    expect(await status(dataOnly.url, '/jobs', undefined, 'POST')).toBe(401);
    expect(await status(dataOnly.url, '/jobs', 'wrong-token-0123456789', 'POST')).toBe(401);
    expect(await status(dataOnly.url, '/live.json', API_TOKEN)).toBe(200);
    expect(await status(dataOnly.url, '/jobs', API_TOKEN, 'POST')).toBe(200);
  } finally {
    await dataOnly.close();
  }
});
