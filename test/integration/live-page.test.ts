/**
 * The live page in a real browser (Debian's headless Chromium driven by playwright-core, never a
 * downloaded one): it loads, shows the lag /metrics reports, lists retries as they happen, and its
 * runs explorer pages forward and back through the same runs, stats and per-task figures as
 * `runs-cdc runs list|stats --json`. Screenshots go to test-output/screenshots/ for review.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { completeRuns, insertRuns, makeRun } from '../../src/demo/workload.ts';
import { DaemonMetrics } from '../../src/ops/metrics.ts';
import { oneTarget } from '../../src/queries/params.ts';
import { RunQueries } from '../../src/queries/run-queries.ts';
import { connectClickHouse } from '../../src/sink/clickhouse.ts';
import { runCli } from '../support/cli.ts';
import { freshEnvironmentPerTest, startTestOps } from '../support/daemon.ts';
import { clickhouseUrl, refuseInserts, testClickHouse, waitFor } from '../support/databases.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(import.meta.dirname, '../../test-output/screenshots');
const SCOPE = ['--org', 'org_1', '--project', 'proj_1', '--env', 'env_prod', '--from', '2026-10-01'];
const PAGE_SIZE = 20;

let browser: Browser;
beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (Debian's package; .ci/run does)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  mkdirSync(SCREENSHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

const env = freshEnvironmentPerTest();

/** `runs-cdc runs <args> --json` against the page's process, parsed. */
async function cliJson<T>(args: string[]): Promise<T> {
  const result = await runCli(['runs', ...args, '--json'], {}).finished();
  if (result.code !== 0) throw new Error(`runs ${args.join(' ')} failed:\n${result.output}`);
  return JSON.parse(result.stdout) as T;
}

interface ListPage {
  runs: { friendlyId: string }[];
  nextCursor: string | null;
  previousCursor: string | null;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

const shownRuns = (page: Page) => page.locator('#runs tbody tr td:first-child').allTextContents();

/** A figure tile's raw value and the time of the sample it shows. */
async function tile(page: Page, id: string): Promise<{ value: number; at: number }> {
  // Both in one read: two reads could straddle the page's next refresh (one sample's value, the next one's time).
  const [value, at] = await page.locator(`#${id}`).evaluate((element) => [element.dataset.value, element.dataset.at]);
  return { value: Number(value), at: Number(at) };
}

async function explorerPage(page: Page, number: number): Promise<string[]> {
  await page.locator(`#runs[data-page="${number}"]`).waitFor();
  return shownRuns(page);
}

it('shows the lag /metrics reports, retries as they happen, and pages runs like `runs list --json`', async () => {
  const { pgdb, database } = env;
  const ch = await testClickHouse();
  // The explorer's queries on a connection of their own, as replicate opens them.
  const queryClient: ClickHouseClient = await connectClickHouse({ url: clickhouseUrl(), chdbPath: ':memory:' });
  const metrics = new DaemonMetrics();
  const replication = await env.start({}, { observer: metrics.observer });
  const ops = await startTestOps(replication, ch, pgdb.url, {
    metrics,
    queries: oneTarget(new RunQueries(queryClient, database, { timeoutSeconds: 10, maxMemoryBytes: 2 ** 30 })),
    sampleEveryMs: 200,
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  try {
    const runs = Array.from({ length: 55 }, (_, i) =>
      makeRun({ table: i % 2 ? 'TaskRun' : 'task_run_v2', index: i, createdAt: new Date(Date.UTC(2026, 10, 1) + i * 60_000) }),
    );
    await insertRuns(
      pgdb.sql,
      'TaskRun',
      runs.filter((r) => r.engine === 'V1'),
    );
    await insertRuns(
      pgdb.sql,
      'task_run_v2',
      runs.filter((r) => r.engine === 'V2'),
    );
    await completeRuns(
      pgdb.sql,
      'task_run_v2',
      runs.filter((r, i) => r.engine === 'V2' && i % 4 === 0).map((r) => r.id),
      new Date(Date.UTC(2026, 10, 2)),
    );
    await replication.caughtUp();

    // The CLI's pages, through the same process (it holds the embedded engine).
    const api = ['--api-url', ops.url];
    const first = await cliJson<ListPage>(['list', ...SCOPE, '--limit', String(PAGE_SIZE), ...api]);
    const second = await cliJson<ListPage>(['list', ...SCOPE, '--limit', String(PAGE_SIZE), '--cursor', first.nextCursor ?? '', ...api]);
    const third = await cliJson<ListPage>(['list', ...SCOPE, '--limit', String(PAGE_SIZE), '--cursor', second.nextCursor ?? '', ...api]);
    const backToSecond = await cliJson<ListPage>([
      'list',
      ...SCOPE,
      '--limit',
      String(PAGE_SIZE),
      '--cursor',
      third.previousCursor ?? '',
      ...api,
    ]);
    const stats = await cliJson<{ tasks: { taskIdentifier: string; runs: number }[]; histogram: unknown[] }>(['stats', ...SCOPE, ...api]);
    const ids = (p: ListPage) => p.runs.map((r) => r.friendlyId);
    expect(ids(first)).toHaveLength(PAGE_SIZE);
    expect(ids(third)).toHaveLength(55 - 2 * PAGE_SIZE);
    expect(third.nextCursor).toBeNull();

    await page.goto(`${ops.url}/?org=org_1&project=proj_1&env=env_prod&from=2026-10-01&limit=${PAGE_SIZE}&refresh=200`);
    expect(await explorerPage(page, 1)).toEqual(ids(first));
    await page.locator('#older').click();
    expect(await explorerPage(page, 2)).toEqual(ids(second));
    await page.screenshot({ path: join(SCREENSHOTS, 'explorer-page-2.png'), fullPage: true });
    await page.locator('#older').click();
    expect(await explorerPage(page, 3)).toEqual(ids(third));
    expect(await page.locator('#older').isDisabled()).toBe(true);
    await page.locator('#newer').click();
    expect(await explorerPage(page, 2)).toEqual(ids(backToSecond));
    expect(ids(backToSecond)).toEqual(ids(second));
    await page.locator('#newer').click();
    expect(await explorerPage(page, 1)).toEqual(ids(first));
    expect(await page.locator('#newer').isDisabled()).toBe(true);

    // Stats: the per-task table is the CLI's, and the histogram has a bar segment per bucket and status.
    await page.locator('#tasks tbody tr').first().waitFor();
    const taskRows = await page
      .locator('#tasks tbody tr')
      .evaluateAll((rows) => rows.map((r) => [r.children[0]?.textContent, Number(r.children[1]?.textContent?.replaceAll(',', ''))]));
    expect(taskRows).toEqual(stats.tasks.map((t) => [t.taskIdentifier, t.runs]));
    expect(await page.locator('#histogram svg rect[height]').count()).toBeGreaterThanOrEqual(stats.histogram.length);

    // Caught up: no lag, on the page as in /metrics.
    await page.locator('#ready', { hasText: /^ready$/ }).waitFor();
    await page.locator('#lag-seconds[data-value="0"]').waitFor();
    expect(await metric(ops.url, 'runs_cdc_replication_lag_seconds')).toBe(0);

    // ClickHouse refuses inserts: lag grows, and the page shows what /metrics says between two scrapes.
    await refuseInserts(ch, database, true);
    await insertRuns(pgdb.sql, 'TaskRun', [makeRun({ table: 'TaskRun', index: 100, createdAt: new Date(Date.UTC(2026, 10, 3)) })]);
    await waitFor('a retry', () => (replication.table.stats.retriesByReason.TOO_MANY_PARTS ?? 0) >= 1);
    await waitFor('lag', async () => (await metric(ops.url, 'runs_cdc_replication_lag_seconds')) > 0);
    const before = {
      seconds: await metric(ops.url, 'runs_cdc_replication_lag_seconds'),
      bytes: await metric(ops.url, 'runs_cdc_replication_lag_bytes'),
    };
    const scrapedAt = Date.now();
    const shown = await waitFor('a sample taken after the scrape', async () => {
      const [seconds, bytes] = [await tile(page, 'lag-seconds'), await tile(page, 'lag-bytes')];
      return seconds.at > scrapedAt && bytes.at > scrapedAt && { seconds: seconds.value, bytes: bytes.value };
    });
    const after = {
      seconds: await metric(ops.url, 'runs_cdc_replication_lag_seconds'),
      bytes: await metric(ops.url, 'runs_cdc_replication_lag_bytes'),
    };
    expect(before.bytes).toBeGreaterThan(0);
    expect(shown.seconds).toBeGreaterThanOrEqual(before.seconds);
    expect(shown.seconds).toBeLessThanOrEqual(after.seconds);
    expect(shown.bytes).toBeGreaterThanOrEqual(before.bytes);
    expect(shown.bytes).toBeLessThanOrEqual(after.bytes);
    await page.locator('#events', { hasText: 'TOO_MANY_PARTS' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'live-page-stalled.png'), fullPage: true });

    await refuseInserts(ch, database, false);
    await replication.caughtUp();
    await page.locator('#lag-seconds[data-value="0"]').waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'live-page.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  } finally {
    await page.close();
    await ops.close();
    await queryClient.close();
  }
});
