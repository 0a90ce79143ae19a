/**
 * Run-list query latency on the embedded engine: N generated runs (default 5,000,000; a few
 * large organizations, many small; 17 statuses; tags) loaded straight into the ClickHouse table,
 * 10% of them updated and 1% deleted as separate inserts, with merges stopped (so FINAL has the
 * work a busy server has), and a migration in progress: 1 in 10 legacy runs also has its task_run_v2
 * copy (same id and sort key, the v2 rank in `_version`), which FINAL must read through. Prints one
 * JSON line with p50/p95 per query. `--rows N`, `--repeat N`, `--migrated 0` to leave out the copies.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_STATUSES } from '../src/queries/filters.ts';
import { RunQueries } from '../src/queries/run-queries.ts';
import { connectClickHouse } from '../src/sink/clickhouse.ts';
import { migrate } from '../src/sink/migrations.ts';
import { keepResult, loadAverage, numberArg } from './args.ts';

const ROWS = numberArg('--rows', 5_000_000);
const REPEAT = numberArg('--repeat', 20);
const MIGRATED = numberArg('--migrated', 1) !== 0;
/** A task_run_v2 version (src/schema/version.ts): the table rank bit over a small version. */
const V2_VERSION = `toUInt128('${(1n << 127n) + 4n}')`;
const NOW = Date.UTC(2026, 10, 23);
const LARGE = { organizationId: 'org_big', projectId: 'proj_1', environmentId: 'env_prod' };

const dir = mkdtempSync(join(tmpdir(), 'runs-cdc-bench-queries-'));
const ch = await connectClickHouse({ chdbPath: dir });
const table = 'runs_cdc.task_runs_v2';
try {
  await migrate(ch, 'runs_cdc');
  await ch.command({ query: `SYSTEM STOP MERGES ${table}` });
  const statuses = `[${RUN_STATUSES.map((s) => `'${s}'`).join(',')}]`;
  // Skew: 40% of runs in one organization (its prod environment gets most), 20% in another, the
  // rest over 5,000 small ones. Statuses skewed toward the common ones. 30 days of history.
  const runs = (version: string, extra: string, where: 'all' | 'updated' | 'deleted' | 'migrated') => `
    INSERT INTO ${table} (run_id, friendly_id, organization_id, project_id, environment_id, status, task_identifier,
      task_version, queue, machine_preset, is_test, tags, created_at, started_at, completed_at, cost_in_cents, source_table,
      _version, _is_deleted)
    SELECT hex(cityHash64(number)) AS run_id, concat('run_', toString(number)),
      multiIf(number % 100 < 40, 'org_big', number % 100 < 60, 'org_mid', concat('org_', toString(number % 5000))) AS org,
      if(org = 'org_big', 'proj_1', concat('proj_', toString(number % 7))),
      if(org = 'org_big' AND number % 10 < 8, 'env_prod', concat('env_', toString(number % 3))),
      ${extra},
      concat('task-', toString(number % 40)), concat('2026110', toString(number % 9)), concat('task/q', toString(number % 40)),
      ['micro', 'small-1x', 'large-1x'][1 + number % 3], number % 20 = 0,
      [concat('user:', toString(number % 10000)), concat('tier:', toString(number % 3))],
      toDateTime64(${NOW / 1000} - (number * 7919 % ${30 * 86_400_000}) / 1000, 3, 'UTC') AS created,
      created + INTERVAL 1 SECOND, created + toIntervalMillisecond(1000 + number % 60000), (number % 100) / 10,
      ${where === 'migrated' ? `'task_run_v2'` : `if(number % 3 = 0, 'TaskRun', 'task_run_v2')`}, ${version}, ${where === 'deleted' ? 1 : 0}
    FROM numbers(${ROWS}) ${{ all: '', updated: 'WHERE number % 10 = 0', deleted: 'WHERE number % 100 = 1', migrated: 'WHERE number % 30 = 0' }[where]}`;
  const started = performance.now();
  await ch.command({ query: runs('1', `${statuses}[1 + toUInt32(sqrt(number % 289))]`, 'all') });
  await ch.command({ query: runs('2', `'COMPLETED_SUCCESSFULLY'`, 'updated') });
  await ch.command({ query: runs('3', `'CANCELED'`, 'deleted') });
  // Legacy runs (number % 3 = 0) copied to task_run_v2, 1 in 10: a second row on their key.
  if (MIGRATED) await ch.command({ query: runs(V2_VERSION, `'EXECUTING'`, 'migrated') });
  const loadSeconds = (performance.now() - started) / 1000;
  const [parts] = await (
    await ch.query({
      query: `SELECT count() AS parts, sum(rows) AS rows FROM system.parts WHERE database = 'runs_cdc' AND table = 'task_runs_v2' AND active`,
      format: 'JSONEachRow',
    })
  ).json<{ parts: string; rows: string }>();

  const queries = new RunQueries(ch, 'runs_cdc', { timeoutSeconds: 30, maxMemoryBytes: 4 * 1024 ** 3 }, () => NOW);
  const time = async (run: () => Promise<unknown>) => {
    await run(); // warm
    const samples: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      const t = performance.now();
      await run();
      samples.push(performance.now() - t);
    }
    samples.sort((a, b) => a - b);
    const at = (q: number) => Number((samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number).toFixed(1));
    return { p50: at(0.5), p95: at(0.95) };
  };
  let cursor: string | undefined;
  for (let page = 1; page < 20; page++) cursor = (await queries.list(LARGE, { limit: 25, cursor })).nextCursor ?? undefined;
  const figures = {
    scenario: 'queries',
    rows: ROWS,
    migrated: MIGRATED,
    largeEnvRuns7d: await queries.count(LARGE),
    parts: Number(parts?.parts),
    storedRows: Number(parts?.rows),
    loadSeconds: Number(loadSeconds.toFixed(1)),
    msFirstPage: await time(() => queries.list(LARGE, { limit: 25 })),
    msPage20: await time(() => queries.list(LARGE, { limit: 25, cursor })),
    msStatusAndTag: await time(() => queries.list({ ...LARGE, statuses: 'CRASHED,SYSTEM_FAILURE', tagsAny: 'tier:1' }, { limit: 25 })),
    msCount: await time(() => queries.count(LARGE)),
    msStats7d: await time(() => queries.stats({ ...LARGE, period: '7d' })),
    msTagsPrefix: await time(() => queries.tags({ organizationId: LARGE.organizationId, projectId: LARGE.projectId, prefix: 'user:12' })),
    // What FINAL costs: the same count without it (wrong under updates and deletes).
    msCountWithoutFinal: await time(async () =>
      (
        await ch.query({
          query: `SELECT count() FROM ${table} WHERE organization_id = 'org_big' AND project_id = 'proj_1' AND environment_id = 'env_prod' AND created_at >= now64() - INTERVAL 7 DAY`,
          format: 'JSONEachRow',
        })
      ).json(),
    ),
    engine: 'chdb',
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    loadAverage: loadAverage(),
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  keepResult('queries', figures);
} finally {
  await ch.close();
  rmSync(dir, { recursive: true, force: true });
}
