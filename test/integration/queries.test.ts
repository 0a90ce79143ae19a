/**
 * Run-list queries against real ClickHouse, with rows that arrived through the real backfill from
 * real Postgres. Expected answers come from a small reference implementation over the generated
 * runs (plain array filters), not from SQL.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackfill } from '../../src/backfill/job.ts';
import { FAILED_STATUSES, RUN_STATUSES, type RunFiltersInput } from '../../src/queries/filters.ts';
import { QueryError, RunQueries } from '../../src/queries/run-queries.ts';
import type { SourceTable } from '../../src/schema/columns.ts';
import { utcTimestamp } from '../../src/utc.ts';
import { anotherClickHouse, usingClickHouseServer } from '../support/backends.ts';
import { backfillContext, backfillRequest } from '../support/backfill.ts';
import { freshClickHouseDatabase, freshPostgres, type TestPostgres, testClickHouse, uniqueName } from '../support/databases.ts';
import { insertRuns, makeRun, type RunRow } from '../support/fixtures.ts';

const NOW = Date.UTC(2026, 10, 8); // the queries' "now": runs below are from the week before
const SCOPE = { organizationId: 'org_1', projectId: 'proj_1', environmentId: 'env_prod' };
const HOSTILE_TAGS = ["it's", 'back\\slash', '100%', '1000', 'a_b', 'aXb', '%', '_', 'quote"d'];
const TIED_AT = Date.UTC(2026, 10, 5, 12, 0, 0, 123);

interface Run extends RunRow {
  table: SourceTable;
}

let pgdb: TestPostgres;
let queries: RunQueries;
let queryClient: ClickHouseClient;
/** The ClickHouse database the runs were backfilled into. */
let database: string;
const runs: Run[] = [];

function generate(): Run[] {
  const out: Run[] = [];
  for (let i = 0; i < 700; i++) {
    const table: SourceTable = i % 3 === 0 ? 'TaskRun' : 'task_run_v2';
    // 100 runs in one millisecond; the rest spread over 8 days (the first day is outside 7d).
    const createdAt = i < 100 ? new Date(TIED_AT) : new Date(NOW - 8 * 86_400_000 + i * 1_000_000);
    const inScope = i % 10 !== 7;
    const run: Run = {
      ...makeRun({ table, index: i, createdAt, environmentId: inScope ? 'env_prod' : 'env_dev' }),
      table,
      status: RUN_STATUSES[i % RUN_STATUSES.length],
      taskIdentifier: i % 11 === 0 ? `task "quoted" ${i % 2}` : `task-${i % 4}`,
      taskVersion: `v${i % 3}`,
      runTags: [`user:${i % 13}`, HOSTILE_TAGS[i % HOSTILE_TAGS.length] as string],
      isTest: i % 6 === 0,
      rootTaskRunId: i % 4 === 0 ? null : `root_${i % 5}`,
      batchId: i % 5 === 0 ? 'batch_1' : null,
      bulkActionGroupIds: i % 7 === 0 ? ['bulk_1', 'bulk_2'] : [],
      scheduleId: i % 9 === 0 ? 'sched_1' : null,
      queue: `queue-${i % 3}`,
      region: i % 2 === 0 ? 'eu' : 'us',
      machinePreset: i % 2 === 0 ? 'small-1x' : 'large-1x',
      startedAt: i % 3 === 0 ? null : utcTimestamp(createdAt),
      completedAt: i % 3 === 0 ? null : utcTimestamp(new Date(createdAt.getTime() + 1000 + i)),
      costInCents: i % 10,
      baseCostInCents: 0.5,
    };
    out.push(run);
  }
  return out;
}

/** The reference: which generated runs a filter set selects (7-day default window). */
function expected(f: RunFiltersInput): Run[] {
  const to = f.to ? Date.parse(f.to) : NOW;
  const hours = { '24h': 24, '7d': 168 }[f.period ?? '7d'] as number;
  const from = f.from ? Date.parse(f.from) : to - hours * 3_600_000;
  const list = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : v.split(','));
  return runs.filter((r) => {
    const created = Date.parse(`${r.createdAt}Z`);
    const tags = r.runTags as string[];
    return (
      r.organizationId === f.organizationId &&
      r.projectId === f.projectId &&
      r.runtimeEnvironmentId === f.environmentId &&
      created >= from &&
      created < to &&
      (!f.tasks || list(f.tasks)?.includes(String(r.taskIdentifier))) &&
      (!f.versions || list(f.versions)?.includes(String(r.taskVersion))) &&
      (!f.statuses || list(f.statuses as string[])?.includes(String(r.status))) &&
      (!f.tagsAny || list(f.tagsAny)?.some((t) => tags.includes(t))) &&
      (!f.tagsAll || list(f.tagsAll)?.every((t) => tags.includes(t))) &&
      (!f.scheduleId || r.scheduleId === f.scheduleId) &&
      (f.test !== 'only' || r.isTest === true) &&
      (f.test !== 'exclude' || r.isTest === false) &&
      (!f.rootOnly || r.rootTaskRunId === null) &&
      (!f.batchId || r.batchId === f.batchId) &&
      (!f.bulkActionId || (r.bulkActionGroupIds as string[]).includes(f.bulkActionId)) &&
      (!f.runIds || list(f.runIds)?.includes(String(r.friendlyId))) &&
      (!f.queues || list(f.queues)?.includes(String(r.queue))) &&
      (!f.regions || list(f.regions)?.includes(String(r.region))) &&
      (!f.machines || list(f.machines)?.includes(String(r.machinePreset))) &&
      (!f.sourceTable || r.table === f.sourceTable)
    );
  });
}

const newestFirst = (a: Run, b: Run) => (a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : a.id < b.id ? 1 : -1);

async function allPages(filters: RunFiltersInput, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await queries.list(filters, { limit, cursor });
    ids.push(...page.runs.map((r) => r.runId));
    if (!page.nextCursor) return ids;
    cursor = page.nextCursor;
  }
  throw new Error('pagination did not end');
}

beforeAll(async () => {
  pgdb = await freshPostgres();
  runs.push(...generate());
  runs.push({
    ...makeRun({ table: 'TaskRun', index: 9999, createdAt: new Date(NOW - 3_600_000), organizationId: 'org_2' }),
    table: 'TaskRun',
  });
  for (const table of ['TaskRun', 'task_run_v2'] as const) {
    await insertRuns(
      pgdb.sql,
      table,
      runs.filter((r) => r.table === table).map(({ table: _, ...r }) => r),
    );
  }
  const slot = uniqueName('slot');
  await pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  const ch = await testClickHouse();
  database = await freshClickHouseDatabase(ch);
  const result = await runBackfill(pgdb.sql, backfillRequest(), backfillContext(pgdb, ch, database, { slot }));
  expect(result.status).toBe('SUCCESS');
  // Reads use a connection of their own: its readonly setting must not touch the writer's.
  queryClient = await anotherClickHouse();
  queries = new RunQueries(queryClient, database, { timeoutSeconds: 10, maxMemoryBytes: 1e9 }, () => NOW);
});

afterAll(async () => {
  await queryClient?.close();
  await pgdb?.close();
});

describe('list', () => {
  it('walks every run exactly once forward, then backward, across pages inside one millisecond', async () => {
    const want = expected(SCOPE)
      .sort(newestFirst)
      .map((r) => r.id);
    expect(want.length).toBeGreaterThan(400);
    const forward: string[] = [];
    let page = await queries.list(SCOPE, { limit: 7 });
    expect(page.previousCursor).toBeNull();
    expect(page).toMatchObject({ hasPreviousPage: false, hasNextPage: true });
    const pages = [page];
    while (page.nextCursor) {
      page = await queries.list(SCOPE, { limit: 7, cursor: page.nextCursor });
      pages.push(page);
    }
    for (const p of pages) forward.push(...p.runs.map((r) => r.runId));
    expect(forward).toEqual(want);
    expect(page).toMatchObject({ hasPreviousPage: true, hasNextPage: false });

    // Back from the last page: each previous page is exactly the page seen going forward.
    let back = pages.at(-1) as (typeof pages)[number];
    for (let i = pages.length - 2; i >= 0; i--) {
      back = await queries.list(SCOPE, { limit: 7, cursor: back.previousCursor as string });
      expect(back.runs.map((r) => r.runId)).toEqual(pages[i]?.runs.map((r) => r.runId));
    }
    expect(back.previousCursor).toBeNull();
    expect(back.hasPreviousPage).toBe(false);
  });

  // A server reads a time without a zone in its own `timezone`; chDB in the session's. The CI
  // also runs this file with TZ=Asia/Kolkata (.ci/run) and against a non-UTC server.
  it.skipIf(usingClickHouseServer())('counts and pages the same when the engine is not in UTC (Asia/Kolkata)', async () => {
    const zoned = await anotherClickHouse();
    try {
      await zoned.command({ query: "SET session_timezone = 'Asia/Kolkata'" });
      const kolkata = new RunQueries(zoned, database, { timeoutSeconds: 10, maxMemoryBytes: 1e9 }, () => NOW);
      const window = { ...SCOPE, from: '2026-11-05T06:00:00Z', to: '2026-11-05T12:00:01Z' }; // with the runs at TIED_AT
      expect(expected(window).length).toBeGreaterThan(10);
      expect(await kolkata.count(window)).toBe(expected(window).length);
      const want = expected({ ...SCOPE, period: '24h' }).sort(newestFirst);
      const ids: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await kolkata.list({ ...SCOPE, period: '24h' }, { limit: 6, cursor });
        ids.push(...page.runs.map((r) => r.runId));
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      expect(ids).toEqual(want.map((r) => r.id));
    } finally {
      await zoned.close();
    }
  });

  it('returns what a run list shows', async () => {
    const [run] = (await queries.list({ ...SCOPE, tasks: 'task-1' }, { limit: 1 })).runs;
    const source = runs.find((r) => r.id === run?.runId) as Run;
    expect(run).toEqual({
      runId: source.id,
      friendlyId: source.friendlyId,
      sourceTable: source.table,
      taskIdentifier: 'task-1',
      status: source.status,
      createdAt: source.createdAt,
      startedAt: source.startedAt,
      completedAt: source.completedAt,
      durationMs: source.startedAt ? Date.parse(`${source.completedAt}Z`) - Date.parse(`${source.startedAt}Z`) : null,
      costInCents: Number(source.costInCents) + 0.5,
      tags: source.runTags,
      taskVersion: source.taskVersion,
      machinePreset: source.machinePreset,
      queue: source.queue,
      isTest: source.isTest,
      rootRunId: source.rootTaskRunId,
      parentRunId: null,
    });
  });

  const cases: Array<[string, Partial<RunFiltersInput> | (() => Partial<RunFiltersInput>)]> = [
    ['tasks', { tasks: 'task-1,task-2' }],
    ['versions', { versions: ['v1'] }],
    ['statuses', { statuses: 'COMPLETED_SUCCESSFULLY,CRASHED' }],
    ['tags any-of', { tagsAny: 'user:1,user:2' }],
    ['tags all-of', { tagsAll: ['user:1', "it's"] }],
    ['schedule', { scheduleId: 'sched_1' }],
    ['period 24h', { period: '24h' }],
    ['explicit from/to', { from: '2026-11-03T00:00:00Z', to: '2026-11-05T12:00:00.123Z' }],
    ['test runs only', { test: 'only' }],
    ['exclude test runs', { test: 'exclude' }],
    ['root runs only', { rootOnly: true }],
    ['batch', { batchId: 'batch_1' }],
    ['bulk action', { bulkActionId: 'bulk_2' }],
    ['run ids', () => ({ runIds: runs.slice(100, 110).map((r) => String(r.friendlyId)) })],
    ['queues', { queues: 'queue-0' }],
    ['regions', { regions: 'us' }],
    ['machines', { machines: 'small-1x' }],
    ['source table', { sourceTable: 'TaskRun' }],
    [
      'combined',
      {
        tasks: 'task-0,task-2',
        statuses: RUN_STATUSES.slice(0, 9).join(','),
        test: 'exclude',
        regions: 'eu',
        tagsAny: 'user:0,user:4,100%',
      },
    ],
  ];
  it.each(cases)('filter: %s — list and count match the reference', async (_name, filter) => {
    const filters = { ...SCOPE, ...(typeof filter === 'function' ? filter() : filter) } as RunFiltersInput;
    const want = expected(filters)
      .sort(newestFirst)
      .map((r) => r.id);
    expect(want.length).toBeGreaterThan(0);
    expect(await allPages(filters, 50)).toEqual(want);
    expect(await queries.count(filters)).toBe(want.length);
  });

  it('matches hostile strings literally: quotes, backslashes, % and _', async () => {
    for (const tag of HOSTILE_TAGS) {
      const want = expected({ ...SCOPE, tagsAny: [tag] }).length;
      expect(want).toBeGreaterThan(0);
      expect(await queries.count({ ...SCOPE, tagsAny: [tag] })).toBe(want);
    }
    const quoted = expected({ ...SCOPE, tasks: ['task "quoted" 1'] }).length;
    expect(await queries.count({ ...SCOPE, tasks: ['task "quoted" 1'] })).toBe(quoted);
    expect(await queries.count({ ...SCOPE, tasks: ["task' OR 1=1 --"] })).toBe(0);
    expect((await queries.tags({ ...SCOPE, prefix: '%' })).tags).toEqual(['%']);
    expect((await queries.tags({ ...SCOPE, prefix: 'a_' })).tags).toEqual(['a_b']);
    expect((await queries.tags({ ...SCOPE, prefix: '100' })).tags).toEqual(['100%', '1000']);
    expect((await queries.tags({ ...SCOPE, prefix: 'back\\' })).tags).toEqual(['back\\slash']);
  });
});

describe('stats, tags, limits', () => {
  it('the status histogram adds up to the count in round buckets; per-task aggregates match the reference', async () => {
    const stats = await queries.stats(SCOPE);
    expect(stats.bucketSeconds).toBe(10_800); // 7 days: 3 h buckets (56), 1 h would be 168
    const want = expected(SCOPE);
    expect(stats.histogram.reduce((n, b) => n + b.runs, 0)).toBe(want.length);
    expect(new Set(stats.histogram.map((b) => b.bucket)).size).toBeLessThanOrEqual(100);
    for (const b of stats.histogram) expect((Date.parse(`${b.bucket}Z`) / 1000) % 10_800).toBe(0);
    const byTask = new Map<string, Run[]>();
    for (const r of want) byTask.set(String(r.taskIdentifier), [...(byTask.get(String(r.taskIdentifier)) ?? []), r]);
    expect(stats.tasks.map((t) => t.taskIdentifier).sort()).toEqual([...byTask.keys()].sort());
    for (const t of stats.tasks) {
      const own = byTask.get(t.taskIdentifier) as Run[];
      expect(t.runs).toBe(own.length);
      expect(t.failures).toBe(own.filter((r) => FAILED_STATUSES.includes(r.status as never)).length);
      expect(t.totalCostInCents).toBeCloseTo(
        own.reduce((n, r) => n + Number(r.costInCents) + 0.5, 0),
        6,
      );
    }
    expect((await queries.stats({ ...SCOPE, period: '30m' })).bucketSeconds).toBe(60);
    expect((await queries.stats({ ...SCOPE, period: '24h' })).bucketSeconds).toBe(900);
  });

  it('tags: prefix search, keyset pages in byte order, each tag once', async () => {
    const want = [...new Set(runs.filter((r) => r.organizationId === 'org_1').flatMap((r) => r.runTags as string[]))]
      .filter((t) => t.startsWith('user:'))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await queries.tags({ organizationId: 'org_1', projectId: 'proj_1', prefix: 'user:', limit: 3, cursor });
      seen.push(...page.tags);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(want);
  });

  it.each([
    [{ ...SCOPE, statuses: 'DONE' }, {}, 'unknown status "DONE"'],
    [{ ...SCOPE }, { cursor: 'bm9wZQ' }, 'malformed cursor'],
    [{ ...SCOPE, from: '2026-11-05', to: '2026-11-04' }, {}, 'must be before to'],
    [{ ...SCOPE }, { limit: 500 }, 'limit must be at most 100'],
    [{ ...SCOPE, period: '7 days' }, {}, 'must be like 30m, 24h or 7d'],
    [{ organizationId: 'org_1', projectId: 'proj_1' }, {}, 'environmentId'],
    [{ ...SCOPE, from: 'yesterday' }, {}, 'is not an ISO UTC time'],
  ])('rejects bad input %j %j with one sentence', async (filters, page, message) => {
    await expect(queries.list(filters as RunFiltersInput, page)).rejects.toThrow(message);
  });

  it('reads run under the configured time limit', async () => {
    const hurried = new RunQueries(queryClient, database, { timeoutSeconds: 0.000_001, maxMemoryBytes: 1e9 }, () => NOW);
    await expect(hurried.stats(SCOPE)).rejects.toThrow(/ran longer than 0.000001 s \(max_execution_time\)/);
  });

  it.skipIf(usingClickHouseServer())(
    'reads run readonly (chDB keeps the setting on the reading connection, so its next insert is refused)',
    async () => {
      await queries.count(SCOPE);
      await expect(
        queryClient.insert({
          table: `${database}.task_runs_v2`,
          values: [{ run_id: 'x', created_at: '2026-11-01 00:00:00.000' }],
          format: 'JSONEachRow',
        }),
      ).rejects.toThrow(/readonly/i);
    },
  );

  it('reads run under the configured memory limit', async () => {
    const starved = new RunQueries(
      queryClient,
      database,
      {
        timeoutSeconds: 10,
        maxMemoryBytes: 1000,
      },
      () => NOW,
    );
    await expect(starved.stats(SCOPE)).rejects.toThrow(QueryError);
    await expect(starved.stats(SCOPE)).rejects.toThrow('max_memory_usage');
  });
});
