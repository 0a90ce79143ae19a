/**
 * No request ends a runs-cdc process or gets a 5xx for what the client sent: a seeded fuzz of raw
 * requests (well-formed, odd, mutated bytes) against every endpoint of a running
 * `replicate --api-port --metrics-port`, and the request that used to kill each server
 * (`GET http://[zz]/`) against `serve` and `backfill --metrics-port` too. Also the bearer token.
 *
 * FUZZ_REQUESTS (default 1500) and FUZZ_SEED (default 12) choose the run; `npm run test:fuzz`
 * sends 20,000.
 */
import { beforeAll, expect, it } from 'vitest';
import { insertRuns, makeRun } from '../../src/demo/workload.ts';
import { freePort } from '../../src/embedded/postgres.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { waitFor, waitForSlot } from '../support/databases.ts';
import { Gen, LEAK, prng, type RawResponse, request, sendRaw } from '../support/fuzz.ts';

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 1500);
const SEED = Number(process.env.FUZZ_SEED ?? 12);
const TOKEN = 'fuzz-token-0123456789abcdef';
const CONCURRENCY = 4;
const CRASHER = Buffer.from('GET http://[zz]/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');

const workspace = cliWorkspace('fuzz', { LOG_LEVEL: 'warn' });

beforeAll(async () => {
  await insertRuns(
    workspace.pgdb.sql,
    'task_run_v2',
    Array.from({ length: 60 }, (_, i) => ({ ...makeRun({ table: 'task_run_v2', index: i }), status: i % 3 === 0 ? 'CRASHED' : 'PENDING' })),
  );
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [workspace.slot]);
  for (const args of [['migrate'], ['backfill']]) {
    const step = await workspace.cli(args).finished();
    expect(step.code, step.output).toBe(0);
  }
});

async function answering(url: string, child: CliProcess): Promise<void> {
  await waitFor(`${url} answering`, async () => {
    if (child.child.exitCode !== null) throw new Error(`exited: ${child.output()}`);
    return (await fetch(url).catch(() => undefined))?.ok === true;
  });
}

/** What the client sent is never a 5xx; /readyz may be 503 only as a readiness answer. */
function checkAnswer(response: RawResponse, sent: Buffer): string | undefined {
  const what = `${JSON.stringify(sent.toString('latin1').slice(0, 200))} -> ${JSON.stringify(response.raw.slice(0, 300))}`;
  if (LEAK.test(response.raw)) return `leaked internals: ${what}`;
  if (response.status >= 500 && !(response.status === 503 && response.body.includes('"ready":false'))) return `5xx: ${what}`;
  const head = sent.subarray(0, 5).toString('latin1') === 'HEAD '; // no body: what follows may be a second answer
  if (response.status >= 400 && !head && !/^\{"error":"[^"]+"/.test(response.body)) return `not a JSON sentence: ${what}`;
  return undefined;
}

it(
  `replicate's API and metrics ports survive ${REQUESTS} fuzzed requests (seed ${SEED}): 4xx for bad input, no 5xx, no internals`,
  async () => {
    const apiPort = await freePort();
    const metricsPort = await freePort();
    const daemon = workspace.cli(['replicate', '--api-port', String(apiPort), '--metrics-port', String(metricsPort)], {
      RUNS_CDC_API_TOKEN: TOKEN,
    });
    try {
      await waitForSlot(workspace.pgdb.sql, workspace.slot, true);
      await answering(`http://127.0.0.1:${apiPort}/healthz`, daemon);
      await answering(`http://127.0.0.1:${metricsPort}/healthz`, daemon);

      // The request that used to end the process, on both ports.
      for (const port of [apiPort, metricsPort]) {
        const answer = await sendRaw(port, CRASHER);
        expect(answer.status).toBe(400);
        expect(JSON.parse(answer.body)).toEqual({ error: expect.stringContaining('not a valid URL') });
      }

      const g = new Gen(prng(SEED));
      const plan = Array.from({ length: REQUESTS }, () => ({ port: g.chance(0.6) ? apiPort : metricsPort, bytes: request(g, TOKEN) }));
      const problems: string[] = [];
      const statuses = new Map<number, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < plan.length) {
            const { port, bytes } = plan[next++] as (typeof plan)[number];
            const answer = await sendRaw(port, bytes);
            statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
            const problem = checkAnswer(answer, bytes);
            if (problem) problems.push(problem);
          }
        }),
      );
      console.log(
        `fuzz: ${REQUESTS} requests, seed ${SEED}, answers by status: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
      );
      expect(problems.slice(0, 10)).toEqual([]);
      // Every request is answered, but for the rare one cut off before its end (nothing to answer).
      expect(statuses.get(0) ?? 0).toBeLessThan(REQUESTS / 100);
      // The fuzz reached the queries (200s), the parser (400s), the guard (405, 401) and Node's parser.
      for (const status of [200, 400, 401, 404, 405]) expect(statuses.get(status) ?? 0, JSON.stringify([...statuses])).toBeGreaterThan(0);
      expect(daemon.child.exitCode).toBe(null);
      expect((await fetch(`http://127.0.0.1:${apiPort}/healthz`)).status).toBe(200);
      expect(daemon.output()).not.toMatch(/\n\s+at /);
    } finally {
      daemon.child.kill('SIGTERM');
      expect(await daemon.exit, daemon.output()).toBe(0);
    }
  },
  60_000 + REQUESTS * 15,
); // about 7 ms a request on 2 busy cores

it('the API needs the bearer token (compared in constant time), /healthz stays open; the CLI sends RUNS_CDC_API_TOKEN', async () => {
  const port = await freePort();
  const serve = workspace.cli(['serve', '--api-port', String(port)], { RUNS_CDC_API_TOKEN: TOKEN });
  try {
    await answering(`http://127.0.0.1:${port}/healthz`, serve);
    const url = `http://127.0.0.1:${port}/runs/count?org=org_1&project=proj_1&env=env_prod&from=2026-10-01`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await ok.json()).toEqual({ count: 60 });
    const args = ['runs', 'count', '--org', 'org_1', '--project', 'proj_1', '--env', 'env_prod', '--from', '2026-10-01'];
    const via = await workspace.cli([...args, '--api-url', `http://127.0.0.1:${port}`], { RUNS_CDC_API_TOKEN: TOKEN }).finished();
    expect(via.stdout.trim()).toBe('60 runs');
    const without = await workspace.cli([...args, '--api-url', `http://127.0.0.1:${port}`]).finished();
    expect(without.code).toBe(2);
    expect(without.output).toContain('missing or wrong bearer token');
    // serve shares the guard: the request that used to end it is a 400.
    expect((await sendRaw(port, CRASHER)).status).toBe(400);
    expect(serve.child.exitCode).toBe(null);
  } finally {
    serve.child.kill('SIGTERM');
    expect(await serve.exit, serve.output()).toBe(0);
  }
});

it('listening beyond loopback without a token logs a warning at start', async () => {
  const port = await freePort();
  const serve = workspace.cli(['serve', '--api-port', String(port), '--listen-host', '0.0.0.0'], { LOG_LEVEL: 'info' });
  try {
    await answering(`http://127.0.0.1:${port}/healthz`, serve);
    expect(serve.output()).toMatch(/"level":40.*run-list API listens on 0\.0\.0\.0 without a token/);
  } finally {
    serve.child.kill('SIGTERM');
    await serve.exit;
  }
});

it('backfill --metrics-port survives the request that used to kill it, and its job ends SUCCESS', async () => {
  const port = await freePort();
  // Slow enough (60 rows at 20 rows/s) to be asked while it runs.
  const backfill = workspace.cli(['backfill', '--metrics-port', String(port), '--rate-limit', '20', '--chunk-rows', '5']);
  await answering(`http://127.0.0.1:${port}/healthz`, backfill);
  expect((await sendRaw(port, CRASHER)).status).toBe(400);
  expect((await sendRaw(port, Buffer.from('POST /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).status).toBe(405);
  const { code, stdout, output } = await backfill.finished();
  expect(code, output).toBe(0);
  expect(stdout).toMatch(/backfill \S+ SUCCESS/);
});
