/** `runs-cdc verify [--repair]`: compare Postgres and ClickHouse; exit 1 when they differ. */
import { Command } from 'commander';
import pg from 'pg';
import { parseTableList, parseUtcTime } from '../backfill/request.ts';
import { requireDatabaseUrl } from '../config.ts';
import { ConfigError } from '../errors.ts';
import type { RunsTable } from '../sink/runs-table.ts';
import { DEFAULT_TARGET, type Routing } from '../sink/targets.ts';
import { SOURCE_TABLES } from '../transform/columns.ts';
import { type RepairResult, repairDifferences } from '../verify/repair.ts';
import { type OrganizationScope, Verifier, type VerifyReport } from '../verify/verify.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, openClickHouse, openTargets } from './runtime.ts';
import { formatTable } from './table.ts';

const positive = (flag: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer (got ${JSON.stringify(text)})`);
  return n;
};
const epochMs = (text: string, flag: string) => Date.parse(`${parseUtcTime(text, flag).replace(' ', 'T')}Z`);

/** Retries of each repair write before verify --repair gives up. */
const REPAIR_RETRIES = 5;

/**
 * What verify compares: the default target, and with --routes each routed target, each for the
 * organizations it holds. Without the scopes a routed organization's runs would count as missing
 * from the default target, and --repair would copy them there.
 */
function verifyTargets(
  defaultTable: RunsTable,
  routing: Routing | undefined,
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
    .option('--repair', 're-copy the differing runs at a fresh snapshot version (safe beside a running daemon)')
    .option('--json', 'print JSON');
  addConfigOptions(command, ['databaseUrl', ...CLICKHOUSE_SETTINGS, 'retryInitialMs', 'retryMaxMs', 'routes']).action(async () => {
    const o = command.opts();
    const tables = o.table ? parseTableList(String(o.table)) : [...SOURCE_TABLES];
    const options = {
      tables,
      fromMs: o.from ? epochMs(String(o.from), '--from') : undefined,
      toMs: o.to ? epochMs(String(o.to), '--to') : undefined,
      windowSeconds: positive('--window-hours', String(o.windowHours)) * 3600,
      leafRows: positive('--leaf-rows', String(o.leafRows)),
    };
    const config = configFrom(command);
    const databaseUrl = requireDatabaseUrl(config);
    const sql = new pg.Client({ connectionString: databaseUrl });
    await sql.connect();
    const client = await openClickHouse(config);
    const log = loggerFor(config);
    const routes = await openTargets(config, client, log, REPAIR_RETRIES).catch(async (error: unknown) => {
      await Promise.all([sql.end(), client.close()]);
      throw error;
    });
    try {
      const targets = verifyTargets(routes.sink, routes.routing);
      const report: VerifyReport = { tables: [], differences: [], equal: true };
      const repaired: Array<RepairResult & { target: string }> = [];
      for (const { name, table, scope } of targets) {
        const part = await new Verifier(sql, table.client, table.database, scope).run(options);
        const named = <T extends object>(items: T[]) => (routes.routing ? items.map((item) => ({ target: name, ...item })) : items);
        report.tables.push(...named(part.tables));
        report.differences.push(...named(part.differences));
        report.equal &&= part.equal;
        if (o.repair && !part.equal) repaired.push({ target: name, ...(await repairDifferences(databaseUrl, table, part.differences)) });
      }
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ ...report, repaired: o.repair ? repaired.map((r) => ({ ...r, version: r.version.toString() })) : undefined })}\n`,
        );
      else {
        const lines = [formatTable(report.tables)];
        if (report.differences.length > 0) lines.push('', formatTable(report.differences.slice(0, 100)));
        if (report.differences.length > 100) lines.push(`… and ${report.differences.length - 100} more (--json lists all)`);
        lines.push('', report.equal ? 'EQUAL' : `DIFFERENT: ${report.differences.length} runs`);
        for (const { target, copied, tombstoned, version } of repaired) {
          const where = routes.routing ? ` in target ${target}` : '';
          lines.push(`repaired${where}: ${copied} copied, ${tombstoned} tombstoned at version ${version}; run verify again to confirm`);
        }
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      process.exitCode = report.equal ? 0 : 1;
    } finally {
      await routes.close();
      await sql.end();
      await client.close();
    }
  });
  return command;
}
