import type { ClickHouseClient } from '@clickhouse/client';
import { Command } from 'commander';
import { requireDatabaseUrl } from '../config.ts';
import { gatherStatus, type StatusReport } from '../ops/status.ts';
import { formatTable } from '../report.ts';
import { withPostgres } from '../source/connection.ts';
import { setExitCode, stdout } from './job-context.ts';
import {
  addConfigOptions,
  ChdbInUseError,
  CLICKHOUSE_SETTINGS,
  chdbInUse,
  configFrom,
  describeClickHouse,
  openClickHouse,
} from './runtime.ts';

export function statusCommand(): Command {
  const command = new Command('status')
    .description('slot, publication, replica identity, ClickHouse counts and backfills; exits 1 when something needs fixing')
    .option('--json', 'print JSON')
    .option('--api-url <url>', 'run it in the replicate daemon at this URL (its --metrics-port), which may hold the chDB directory');
  addConfigOptions(command, [
    'databaseUrl',
    ...CLICKHOUSE_SETTINGS,
    'slot',
    'publication',
    'slotMaxInactiveSeconds',
    'slotMaxRetainedWalBytes',
  ]).action(async () => {
    const config = configFrom(command);
    await withPostgres(requireDatabaseUrl(config), async (sql) => {
      let clickhouse: ClickHouseClient | { unavailable: string };
      try {
        clickhouse = await openClickHouse(config);
      } catch (error) {
        clickhouse = { unavailable: error instanceof ChdbInUseError ? chdbInUse(config.chdbPath).message : (error as Error).message };
      }
      try {
        const report = await gatherStatus(
          sql,
          { slot: config.slot, publication: config.publication, database: config.clickhouseDatabase },
          clickhouse,
          { maxInactiveSeconds: config.slotMaxInactiveSeconds, maxRetainedWalBytes: config.slotMaxRetainedWalBytes },
        );
        stdout(`${command.opts().json ? JSON.stringify(report) : render(report, describeClickHouse(config))}\n`);
        setExitCode(report.problems.length > 0 ? 1 : 0);
      } finally {
        if (!('unavailable' in clickhouse)) await clickhouse.close();
      }
    });
  });
  return command;
}

function render(r: StatusReport, where: string): string {
  const s = r.slot;
  const slot = s.exists
    ? `slot ${s.name}: ${s.active ? `active (pid ${s.activePid})` : 'inactive'}, plugin ${s.plugin}, confirmed ${s.confirmedFlushLsn}, lag ${s.lag} (${s.lagBytes} bytes), wal_status ${s.walStatus}, retains ${s.retainedWalBytes ?? 'unknown'} bytes of WAL${s.inactiveSeconds ? `, no consumer for ${Math.round(s.inactiveSeconds)} s or more` : ''}`
    : `slot ${s.name}: MISSING`;
  const lines = [
    slot,
    `publication ${r.publication.name}: ${r.publication.exists ? 'exists' : 'MISSING'}`,
    formatTable(
      r.tables.map((t) => ({ table: t.table, exists: t.exists, published: t.published, 'replica identity': t.replicaIdentity ?? '' })),
    ),
    `runs in both tables (the task_run_v2 copy counts): ${r.migration.runsInBothTables ?? `unknown (${r.migration.note})`}`,
    '',
    `ClickHouse (${where}):`,
  ];
  if (!r.clickhouse.available) lines.push(`  unavailable: ${r.clickhouse.note}`);
  else {
    lines.push(
      formatTable(
        (r.clickhouse.rows ?? []).map((c) => ({ 'source table': c.sourceTable, 'live runs (FINAL)': c.final, 'stored rows (raw)': c.raw })),
      ),
    );
    lines.push('', 'latest backfills:', formatTable(r.clickhouse.backfills ?? []));
  }
  lines.push('', r.problems.length === 0 ? 'OK' : `PROBLEMS:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  return lines.join('\n');
}
