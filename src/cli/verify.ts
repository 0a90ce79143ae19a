/** `runs-cdc verify [--repair]`: compare Postgres and ClickHouse; exit 1 when they differ (after --repair: when they still do). */

import { Command } from 'commander';
import type pg from 'pg';
import { parseTableList, parseUtcTime } from '../backfill/request.ts';
import { requireDatabaseUrl } from '../config.ts';
import { UsageError } from '../errors.ts';
import { formatTable } from '../report.ts';
import { SOURCE_COLUMNS, SOURCE_TABLES } from '../schema/columns.ts';
import { runDdl } from '../sink/migrations.ts';
import { type RunsTable, SYNC_REPLICAS_SETTINGS, syncReplicasStatement } from '../sink/runs-table.ts';
import { DEFAULT_TARGET, type Routing } from '../sink/targets.ts';
import { withPostgres } from '../source/connection.ts';
import { type ColumnSet, KEY_COLUMNS } from '../verify/fingerprint.ts';
import { type RepairResult, repairDifferences } from '../verify/repair.ts';
import { type OrganizationScope, Verifier, type VerifyOptions, type VerifyReport } from '../verify/verify.ts';
import { EXIT_FINDING, EXIT_OK } from './failures.ts';
import { setExitCode, stdout } from './job-context.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, openClickHouse, openTargets } from './runtime.ts';

const positive = (flag: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer (got ${JSON.stringify(text)})`);
  return n;
};
const epochMs = (text: string, flag: string) => Date.parse(`${parseUtcTime(text, flag).replace(' ', 'T')}Z`);

function columnSet(text: string): ColumnSet {
  if (text !== 'all' && text !== 'key') throw new UsageError(`--columns must be all or key (got ${JSON.stringify(text)})`);
  return text;
}

/** Retries of each repair write before verify --repair gives up. */
const REPAIR_RETRIES = 5;

/**
 * What verify compares: the default target, and with --routes each routed target, each for the
 * organizations it holds. Without the scopes a routed organization's runs would count as missing
 * from the default target, and --repair would copy them there.
 */
function verifyTargets(
  defaultTable: RunsTable,
  routing: Routing<RunsTable> | undefined,
): Array<{ name: string; table: RunsTable; scope?: OrganizationScope }> {
  if (!routing) return [{ name: DEFAULT_TARGET, table: defaultTable }];
  const routed = Object.entries(routing.organizations); // every one to a named target, never "default" (config)
  return [
    { name: DEFAULT_TARGET, table: defaultTable, scope: { except: routed.map(([org]) => org) } },
    ...[...routing.targets].map(([name, table]) => ({
      name,
      table,
      scope: { only: routed.filter(([, target]) => target === name).map(([org]) => org) },
    })),
  ];
}

export function verifyCommand(): Command {
  const command = new Command('verify')
    .description('compare Postgres and ClickHouse per time window, name the runs that differ; exit 1 if any')
    .option('--table <names>', 'TaskRun, task_run_v2 or both, comma-separated (default: both)')
    .option('--from <utc>', 'runs created at or after this UTC time')
    .option('--to <utc>', 'runs created before this UTC time')
    .option('--window-hours <n>', 'compare per window of this many hours of createdAt', '24')
    .option('--leaf-rows <n>', 'halve a differing window until each side has at most this many runs', '2000')
    .option('--columns <set>', `all: hash every mapped column; key: only ${KEY_COLUMNS.join(', ')} (cheaper)`, 'all')
    .option('--repair', 're-copy the differing runs at a fresh snapshot version (safe beside a running daemon)')
    .option('--json', 'print JSON')
    .option('--api-url <url>', 'run it in the replicate daemon at this URL (its --metrics-port), which may hold the chDB directory');
  addConfigOptions(command, ['databaseUrl', ...CLICKHOUSE_SETTINGS, 'retryInitialMs', 'retryMaxMs', 'routes']).action(async () => {
    const o = command.opts();
    const tables = o.table ? parseTableList(String(o.table)) : [...SOURCE_TABLES];
    const options = {
      tables,
      fromMs: o.from ? epochMs(String(o.from), '--from') : undefined,
      toMs: o.to ? epochMs(String(o.to), '--to') : undefined,
      windowSeconds: positive('--window-hours', String(o.windowHours)) * 3600,
      leafRows: positive('--leaf-rows', String(o.leafRows)),
      columns: columnSet(String(o.columns)),
    };
    const config = configFrom(command);
    const databaseUrl = requireDatabaseUrl(config);
    await withPostgres(databaseUrl, async (sql) => {
      const client = await openClickHouse(config);
      try {
        const routes = await openTargets(config, client, loggerFor(config), REPAIR_RETRIES);
        try {
          const result = await verifyEachTarget(sql, routes, options, o.repair ? databaseUrl : undefined);
          // After a repair, compare again: the exit code says whether the databases are equal now.
          if (result.repaired.length > 0) {
            // On a cluster, every replica first fetches what the repair wrote (see runs-table.ts).
            if (config.clickhouseCluster) {
              await runDdl(client, syncReplicasStatement(config.clickhouseDatabase, config.clickhouseCluster), SYNC_REPLICAS_SETTINGS);
            }
            result.recheck = (await verifyEachTarget(sql, routes, options, undefined)).report;
          }
          stdout(`${o.json ? jsonReport(result, Boolean(o.repair)) : textReport(result, routes.routing !== undefined)}\n`);
          setExitCode((result.recheck ?? result.report).equal ? EXIT_OK : EXIT_FINDING);
        } finally {
          await routes.close();
        }
      } finally {
        await client.close();
      }
    });
  });
  return command;
}

interface VerifyResult {
  report: VerifyReport;
  repaired: Array<RepairResult & { target: string }>;
  /** The comparison after the repair, when something was repaired. */
  recheck?: VerifyReport;
}

/** Verify every target for its organizations; with `repairFrom` (the Postgres URL), repair each differing one. */
async function verifyEachTarget(
  sql: pg.Client,
  routes: { sink: RunsTable; routing: Routing<RunsTable> | undefined },
  options: VerifyOptions,
  repairFrom: string | undefined,
): Promise<VerifyResult> {
  const report: VerifyReport = { columns: [], tables: [], differences: [], equal: true };
  const repaired: VerifyResult['repaired'] = [];
  for (const { name, table, scope } of verifyTargets(routes.sink, routes.routing)) {
    const part = await new Verifier(sql, table.client, table.database, scope).run(options);
    report.columns = part.columns;
    const named = <T extends object>(items: T[]) => (routes.routing ? items.map((item) => ({ target: name, ...item })) : items);
    report.tables.push(...named(part.tables));
    report.differences.push(...named(part.differences));
    report.equal &&= part.equal;
    if (repairFrom && !part.equal) repaired.push({ target: name, ...(await repairDifferences(repairFrom, table, part.differences)) });
  }
  return { report, repaired };
}

function jsonReport({ report, repaired, recheck }: VerifyResult, repair: boolean): string {
  return JSON.stringify({
    ...report,
    repaired: repair ? repaired.map((r) => ({ ...r, version: r.version.toString() })) : undefined,
    recheck: recheck && { equal: recheck.equal, differences: recheck.differences },
  });
}

function textReport({ report, repaired, recheck }: VerifyResult, routed: boolean): string {
  const all = report.columns.length === SOURCE_COLUMNS.length;
  const lines = [
    `compared ${all ? `every mapped column (${report.columns.length})` : `the key columns ${report.columns.join(', ')} (--columns key)`}`,
    formatTable(report.tables),
  ];
  const shown = report.differences.slice(0, 100).map(({ columns, ...d }) => ({
    ...d,
    postgres: d.postgres ?? '',
    clickhouse: d.clickhouse ?? '',
    'differing columns': columns?.join(', ') ?? '',
  }));
  if (report.differences.length > 0) lines.push('', formatTable(shown));
  if (report.differences.length > 100) lines.push(`… and ${report.differences.length - 100} more (--json lists all)`);
  lines.push('', report.equal ? 'EQUAL' : `DIFFERENT: ${report.differences.length} runs`);
  for (const { target, copied, tombstoned, version } of repaired) {
    const where = routed ? ` in target ${target}` : '';
    lines.push(`repaired${where}: ${copied} copied, ${tombstoned} tombstoned at version ${version}`);
  }
  if (recheck)
    lines.push(recheck.equal ? 'after the repair: EQUAL' : `after the repair: still DIFFERENT: ${recheck.differences.length} runs`);
  return lines.join('\n');
}
