/** `runs-cdc verify [--repair]`: compare Postgres and ClickHouse; exit 1 when they differ. */
import { Command } from 'commander';
import pg from 'pg';
import { parseUtcTime } from '../backfill/request.ts';
import { requireDatabaseUrl } from '../config.ts';
import { ConfigError } from '../errors.ts';
import { isSourceTable, SOURCE_TABLES, type SourceTable } from '../transform/columns.ts';
import { type RepairResult, repairDifferences } from '../verify/repair.ts';
import { Verifier } from '../verify/verify.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, openClickHouse, openRunsTable } from './runtime.ts';
import { formatTable } from './table.ts';

const positive = (flag: string, text: string) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag} must be a positive integer (got ${JSON.stringify(text)})`);
  return n;
};
const epochMs = (text: string, flag: string) => Date.parse(`${parseUtcTime(text, flag).replace(' ', 'T')}Z`);

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
  addConfigOptions(command, ['databaseUrl', ...CLICKHOUSE_SETTINGS, 'retryInitialMs', 'retryMaxMs']).action(async () => {
    const o = command.opts();
    const tables = (
      o.table
        ? String(o.table)
            .split(',')
            .map((t) => t.trim())
        : [...SOURCE_TABLES]
    ) as string[];
    for (const t of tables)
      if (!isSourceTable(t)) throw new ConfigError(`--table: unknown table ${JSON.stringify(t)}: use ${SOURCE_TABLES.join(' or ')}`);
    const options = {
      tables: tables as SourceTable[],
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
    try {
      const report = await new Verifier(sql, client, config.clickhouseDatabase).run(options);
      let repaired: RepairResult | undefined;
      if (o.repair && !report.equal) {
        repaired = await repairDifferences(databaseUrl, await openRunsTable(client, config, loggerFor(config), 5), report.differences);
      }
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ ...report, repaired: repaired && { ...repaired, version: repaired.version.toString() } })}\n`,
        );
      else {
        const lines = [formatTable(report.tables)];
        if (report.differences.length > 0) lines.push('', formatTable(report.differences.slice(0, 100)));
        if (report.differences.length > 100) lines.push(`… and ${report.differences.length - 100} more (--json lists all)`);
        lines.push('', report.equal ? 'EQUAL' : `DIFFERENT: ${report.differences.length} runs`);
        if (repaired)
          lines.push(
            `repaired: ${repaired.copied} copied, ${repaired.tombstoned} tombstoned at version ${repaired.version}; run verify again to confirm`,
          );
        process.stdout.write(`${lines.join('\n')}\n`);
      }
      process.exitCode = report.equal ? 0 : 1;
    } finally {
      await sql.end();
      await client.close();
    }
  });
  return command;
}
