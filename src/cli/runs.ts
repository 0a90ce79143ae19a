import { Command } from 'commander';
import type { Config, ConfigKey } from '../config.ts';
import { firstLine, RunsCdcError, UsageError } from '../errors.ts';
import { startApi } from '../queries/http-api.ts';
import { LIST_NAMES, parseQuery, QUERY_HELP, QUERY_NAMES, QUERY_PATHS, type QueryKind, runQuery } from '../queries/params.ts';
import type { RunListPage, RunStats, TagsPage } from '../queries/run-queries.ts';
import { formatTable } from '../report.ts';
import { printData } from './output.ts';
import { openQueries } from './query-api.ts';
import { addConfigOptions, attributeName, ChdbInUseError, CLICKHOUSE_SETTINGS, configFrom, loggerFor } from './runtime.ts';

const QUERY_SETTINGS: ConfigKey[] = [...CLICKHOUSE_SETTINGS, 'queryTimeoutSeconds', 'queryMaxMemoryBytes', 'routes', 'apiToken'];
// Every query flag collects its values, so a repeated single-value flag reaches the shared parser
// (which refuses it) instead of the last one silently winning.
const collect = (value: string, previous: string[] = []) => [...previous, value];

type Subcommand = QueryKind;
const DESCRIPTIONS: Record<Subcommand, string> = {
  list: 'runs newest first, keyset-paged (--cursor from the previous output)',
  count: 'how many runs match',
  stats: 'status histogram over time and per-task aggregates',
  tags: 'distinct tags in scope, by prefix',
};

/** The query flags given, in the shared parser's shape: one pair per value. */
function givenPairs(name: Subcommand, options: Record<string, unknown>): Array<[string, string | boolean]> {
  return QUERY_NAMES[name].flatMap((flag) => {
    const value = options[attributeName(flag)];
    if (value === undefined) return [];
    return (Array.isArray(value) ? value : [value]).map((v): [string, string | boolean] => [flag, v as string | boolean]);
  });
}

export function runsCommand(): Command {
  const runs = new Command('runs').description('query the replicated runs (never Postgres)');
  for (const name of Object.keys(QUERY_PATHS) as Subcommand[]) {
    const sub = new Command(name).description(DESCRIPTIONS[name]);
    for (const flag of QUERY_NAMES[name]) {
      const help = LIST_NAMES.has(flag) ? `${QUERY_HELP[flag]} (repeat or comma-separate)` : QUERY_HELP[flag];
      if (flag === 'root-only') sub.option('--root-only', help);
      else sub.option(`--${flag} <${flag === 'limit' ? 'n' : 'value'}>`, help, collect);
    }
    sub.option('--json', 'print JSON instead of a table');
    sub.option(
      '--api-url <url>',
      'ask the HTTP API of a running runs-cdc (replicate --api-port / serve) instead of ClickHouse, e.g. http://127.0.0.1:8080',
    );
    addConfigOptions(sub, QUERY_SETTINGS).action(async () => {
      const options = sub.opts();
      const pairs = givenPairs(name, options);
      const input = parseQuery(name, pairs, 'flag');
      const config = configFrom(sub);
      const result = options.apiUrl
        ? await viaApi(String(options.apiUrl), name, pairs, config.apiToken)
        : await direct(config, name, input);
      printData(`${options.json ? JSON.stringify(result) : render(name, result)}\n`);
    });
    runs.addCommand(sub);
  }
  return runs;
}

export function serveCommand(): Command {
  const command = new Command('serve').description('serve the run-list queries as a read-only HTTP JSON API until stopped');
  addConfigOptions(command, [...QUERY_SETTINGS, 'apiPort', 'listenHost']).action(async () => {
    const config = configFrom(command);
    const log = loggerFor(config);
    const queries = await openQueries(config, log);
    const api = await startApi(queries.router, config.apiPort ?? 8080, config.listenHost, log, config.apiToken);
    process.stdout.write(`serving ${api.url}/runs, /runs/count, /runs/stats, /runs/tags\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await api.close();
    await queries.close();
  });
  return command;
}

async function direct(config: Config, name: Subcommand, input: Record<string, unknown>): Promise<unknown> {
  let queries: Awaited<ReturnType<typeof openQueries>>;
  try {
    queries = await openQueries(config, loggerFor(config));
  } catch (error) {
    if (error instanceof ChdbInUseError) {
      throw new RunsCdcError(
        `${error.message}; or ask that process: runs-cdc replicate --api-port 8080, then add --api-url http://127.0.0.1:8080`,
      );
    }
    throw error;
  }
  try {
    return await runQuery(queries.router, name, input);
  } finally {
    await queries.close();
  }
}

async function viaApi(
  apiUrl: string,
  name: Subcommand,
  pairs: Array<[string, string | boolean]>,
  token: string | undefined,
): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(QUERY_PATHS[name], apiUrl);
  } catch {
    throw new UsageError(`--api-url ${JSON.stringify(apiUrl)} is not a URL: give the API's address, like http://127.0.0.1:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--api-url ${JSON.stringify(apiUrl)} is not an http(s) URL: give the API's address, like http://127.0.0.1:8080`);
  }
  for (const [flag, value] of pairs) url.searchParams.append(flag, value === true ? 'true' : String(value));
  let response: Response;
  try {
    response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new RunsCdcError(
      `the runs-cdc API at ${apiUrl} is not reachable (${cause?.code ?? cause?.message ?? firstLine(error)}): is replicate --api-port or serve running there?`,
    );
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string };
  if (response.status === 400) throw new UsageError(body.error ?? 'the API refused the request');
  if (!response.ok) throw new RunsCdcError(body.error ?? `the API at ${apiUrl} answered ${response.status}`);
  return body;
}

function bucketName(seconds: number): string {
  if (seconds < 3600) return `${seconds / 60}m`;
  if (seconds < 86_400) return `${seconds / 3600}h`;
  return `${seconds / 86_400}d`;
}

function seconds(ms: number | null): string {
  return ms === null ? '' : `${(ms / 1000).toFixed(1)}s`;
}

function render(name: Subcommand, result: unknown): string {
  if (name === 'count') return `${(result as { count: number }).count} runs`;
  if (name === 'tags') {
    const page = result as TagsPage;
    return [...page.tags, ...(page.nextCursor ? [`\nnext page: --cursor ${page.nextCursor}`] : [])].join('\n') || '(no tags)';
  }
  if (name === 'stats') {
    const stats = result as RunStats;
    return [
      `${stats.from} to ${stats.to} UTC, ${bucketName(stats.bucketSeconds)} buckets`,
      formatTable(stats.histogram),
      '',
      formatTable(stats.tasks.map((t) => ({ ...t, avgDurationMs: t.avgDurationMs ?? '', p95DurationMs: t.p95DurationMs ?? '' }))),
    ].join('\n');
  }
  const page = result as RunListPage;
  const table = formatTable(
    page.runs.map((r) => ({
      id: r.friendlyId,
      task: r.taskIdentifier,
      status: r.status,
      created: r.createdAt,
      started: r.startedAt ?? '',
      completed: r.completedAt ?? '',
      duration: seconds(r.durationMs),
      cost: r.costInCents.toFixed(2),
      tags: r.tags.join(','),
      version: r.taskVersion ?? '',
      machine: r.machinePreset ?? '',
      queue: r.queue,
      test: r.isTest ? 'test' : '',
    })),
  );
  const links = [
    page.previousCursor && `previous page: --cursor ${page.previousCursor}`,
    page.nextCursor && `next page: --cursor ${page.nextCursor}`,
  ];
  return [table, ...links.filter(Boolean)].join('\n');
}
