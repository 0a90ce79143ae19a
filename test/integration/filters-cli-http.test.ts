/**
 * One parser for run-query input, shared by `runs-cdc runs …` and the HTTP API: the same table of
 * cases through both gives the same answer — the same result for good input (`root-only`
 * included), and for bad input a usage error (exit 2 / HTTP 400) whose sentence names the input
 * as the user typed it (`--env` on the command line, `env` in a query string).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { insertRuns, makeRun } from '../../src/demo/workload.ts';
import { freePort } from '../../src/embedded/postgres.ts';
import { type CliProcess, cliWorkspace } from '../support/cli.ts';
import { waitFor } from '../support/databases.ts';

const workspace = cliWorkspace('filters', { LOG_LEVEL: 'warn' });
const SCOPE: Array<[string, string]> = [
  ['org', 'org_1'],
  ['project', 'proj_1'],
  ['env', 'env_prod'],
  ['from', '2026-10-01'],
];
let serve: CliProcess;
let api: string;

beforeAll(async () => {
  // 30 runs, every third a child run (with a root): root-only must leave 20.
  await insertRuns(
    workspace.pgdb.sql,
    'task_run_v2',
    Array.from({ length: 30 }, (_, i) => ({
      ...makeRun({ table: 'task_run_v2', index: i }),
      status: i % 5 === 0 ? 'CRASHED' : 'PENDING',
      rootTaskRunId: i % 3 === 0 ? 'root_1' : null,
      ...(i === 7 ? { runTags: ['token=a-value-not-a-secret'] } : {}),
    })),
  );
  await workspace.pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [workspace.slot]);
  for (const args of [['migrate'], ['backfill']]) {
    const step = await workspace.cli(args).finished();
    expect(step.code, step.output).toBe(0);
  }
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  serve = workspace.cli(['serve', '--api-port', String(port)]);
  await waitFor('the API', async () => (await fetch(`${api}/healthz`).catch(() => undefined))?.ok === true);
});
afterAll(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exit;
});

type Case = {
  name: string;
  kind: 'list' | 'count';
  pairs: Array<[string, string | true]>;
  /** A count for good input; for bad input the sentence, with {name} for the name as typed. */
  expect: { count: number } | { error: string };
};

const CASES: Case[] = [
  { name: 'scope only', kind: 'count', pairs: SCOPE, expect: { count: 30 } },
  { name: 'root-only', kind: 'count', pairs: [...SCOPE, ['root-only', true]], expect: { count: 20 } },
  { name: 'statuses, comma-separated', kind: 'count', pairs: [...SCOPE, ['status', 'CRASHED,EXECUTING']], expect: { count: 6 } },
  { name: 'a repeated list name', kind: 'count', pairs: [...SCOPE, ['status', 'CRASHED'], ['status', 'PENDING']], expect: { count: 30 } },
  { name: 'a missing scope', kind: 'count', pairs: SCOPE.filter(([n]) => n !== 'env'), expect: { error: '{env} is required' } },
  {
    name: 'a repeated single value',
    kind: 'count',
    pairs: [...SCOPE, ['env', 'env_dev']],
    expect: { error: '{env} is given more than once: give it once' },
  },
  {
    name: 'an impossible date',
    kind: 'count',
    pairs: [...SCOPE.filter(([n]) => n !== 'from'), ['from', '2026-02-30']],
    expect: { error: '{from}: time "2026-02-30" names a day that does not exist' },
  },
  {
    name: 'a period out of range',
    kind: 'count',
    pairs: [...SCOPE.filter(([n]) => n !== 'from'), ['period', '99999d']],
    expect: { error: '{period}: period "99999d" is longer than ten years (3650d)' },
  },
  {
    name: 'a limit out of range',
    kind: 'list',
    pairs: [...SCOPE, ['limit', '101']],
    expect: { error: '{limit} must be a whole number from 1 to 100 (got "101")' },
  },
  {
    name: 'a limit that is not a number',
    kind: 'list',
    pairs: [...SCOPE, ['limit', 'ten']],
    expect: { error: '{limit} must be a whole number from 1 to 100 (got "ten")' },
  },
  { name: 'an unknown status', kind: 'count', pairs: [...SCOPE, ['status', 'DONE']], expect: { error: '{status}: unknown status "DONE"' } },
  { name: 'a bad test value', kind: 'count', pairs: [...SCOPE, ['test', 'maybe']], expect: { error: '{test}: ' } },
  {
    name: 'from after to',
    kind: 'count',
    pairs: [...SCOPE, ['to', '2026-09-01']],
    expect: { error: '{from} (2026-10-01T00:00:00.000Z) must be before {to}' },
  },
];

const PATH = { list: '/runs', count: '/runs/count' } as const;

it.each(CASES)('$name: the CLI and the API answer alike', async ({ kind, pairs, expect: expected }) => {
  const url = new URL(PATH[kind], api);
  for (const [name, value] of pairs) url.searchParams.append(name, value === true ? 'true' : value);
  const http = await fetch(url);
  const body = (await http.json()) as { count?: number; error?: string };

  const args = ['runs', kind, '--json', ...pairs.flatMap(([name, value]) => (value === true ? [`--${name}`] : [`--${name}`, value]))];
  if ('count' in expected) {
    expect(http.status, JSON.stringify(body)).toBe(200);
    expect(body.count).toBe(expected.count);
    // The CLI asks the same server (the directory is held by serve): same parser, same answer.
    const via = await workspace.cli([...args, '--api-url', api]).finished();
    expect(via.code, via.output).toBe(0);
    expect(JSON.parse(via.stdout)).toEqual(body);
  } else {
    expect(http.status).toBe(400);
    expect(body.error).toContain(expected.error.replaceAll(/\{(\w[\w-]*)\}/g, '$1'));
    // Refused before any connection: the CLI needs no ClickHouse to say it.
    const cli = await workspace.cli(args, { CHDB_PATH: `${workspace.chdbPath}-not-used` }).finished();
    expect(cli.code, cli.output).toBe(2);
    expect(cli.output).toContain(expected.error.replaceAll(/\{(\w[\w-]*)\}/g, '--$1'));
  }
});

it('an unknown or misspelt name is refused by both, naming it as typed', async () => {
  const http = await fetch(`${api}/runs/count?org=org_1&project=proj_1&envv=env_prod`);
  expect(http.status).toBe(400);
  expect(((await http.json()) as { error: string }).error).toMatch(/^unknown parameter "envv": \/runs\/count takes org, project, env, /);
  const cli = await workspace.cli(['runs', 'count', '--org', 'org_1', '--project', 'proj_1', '--envv', 'env_prod']).finished();
  expect(cli.code).toBe(2);
  expect(cli.output).toContain("unknown option '--envv'");
  expect(cli.output).toContain('Did you mean --env?');
});

it('subcommand help shows formats, defaults, required flags and limits', async () => {
  const help = await workspace.cli(['runs', 'list', '--help']).finished();
  expect(help.code).toBe(0);
  const text = help.stdout.replace(/\s+/g, ' '); // commander wraps at the terminal width
  expect(text).toContain('--env <value> environment id (required');
  expect(text).toContain('--period <value> window ending now: 30m, 24h, 7d (default 7d, at most 3650d)');
  expect(text).toContain('--limit <n> page size (list: default 25, at most 100');
  expect(text).toContain('ISO UTC (2026-01-31');
});

it('query results are data, not redacted: a tag token=… comes back whole from both', async () => {
  const http = await fetch(`${api}/runs/tags?org=org_1&project=proj_1&prefix=token`);
  expect(await http.json()).toEqual({ tags: ['token=a-value-not-a-secret'], nextCursor: null });
  const cli = await workspace
    .cli(['runs', 'tags', '--org', 'org_1', '--project', 'proj_1', '--prefix', 'token', '--api-url', api])
    .finished();
  expect(cli.stdout.trim()).toBe('token=a-value-not-a-secret');
});
