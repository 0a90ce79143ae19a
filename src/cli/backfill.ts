import type { ClickHouseClient } from '@clickhouse/client';
import { Command } from 'commander';
import type pg from 'pg';
import type { JobRecord } from '../backfill/checkpoints.ts';
import { type BackfillPlan, backfillContextFor, checkpointStoreFor, planBackfill, resumeBackfill, runBackfill } from '../backfill/job.ts';
import { progressReporter } from '../backfill/progress.ts';
import { parseBackfillOptions } from '../backfill/request.ts';
import { explicitTuning } from '../backfill/resume-settings.ts';
import { BACKFILL_PROFILES, backfillTuning, type Config, requireDatabaseUrl } from '../config.ts';
import { UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { BackfillMetrics } from '../ops/backfill-metrics.ts';
import { type OpsServer, startOpsServer } from '../ops/server.ts';
import { checkSlotIdentity } from '../replication/slot-guard.ts';
import { backfillSummary, formatTable } from '../report.ts';
import { ClickHouseSlotLedger } from '../sink/slot-ledger.ts';
import { RunsTargets } from '../sink/targets.ts';
import { readSlot } from '../source/catalog.ts';
import { withPostgres } from '../source/connection.ts';
import { EXIT_COULD_NOT_RUN, EXIT_FINDING, EXIT_OK } from './failures.ts';
import { jobContext, setExitCode, stdout } from './job-context.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, onStopSignals, openClickHouse, openTargets } from './runtime.ts';

const BACKFILL_SETTINGS = [
  'databaseUrl',
  ...CLICKHOUSE_SETTINGS,
  'slot',
  'publication',
  'backfillProfile',
  'backfillChunkRows',
  'backfillRateLimit',
  'backfillConcurrency',
  'backfillCheckpointEvery',
  'backfillMaxRows',
  'backfillRetries',
  'retryInitialMs',
  'retryMaxMs',
  'routes',
  'metricsPort',
  'listenHost',
  'metricsToken',
] as const;

export function backfillCommand(): Command {
  const command = new Command('backfill')
    .description('copy existing runs from Postgres into ClickHouse, resumably; ends SUCCESS, FAILURE or EMPTY')
    .option('--table <names>', 'TaskRun, task_run_v2 or both, comma-separated (default: both)')
    .option('--from <utc>', 'copy runs created at or after this UTC time (2026-01-31 or 2026-01-31T12:00:00Z)')
    .option('--to <utc>', 'copy runs created before this UTC time')
    .option('--after <cursor>', 'start after this <createdAt>_<id> cursor')
    .option('--mode <mode>', 'default (version 0: CDC always wins) | repair (snapshot version: fixes wrong rows)')
    .option('--resume <job-id>', 'continue a stopped job from its checkpoints')
    .option('--dry-run', 'print the plan (tables, ranges, estimated rows) and exit')
    .option('--list', 'list backfill jobs with their status')
    .option('--exact-count', 'count rows for the plan and progress instead of estimating')
    .option('--create-slot', 'create the replication slot if missing (default mode needs it)')
    .option('--api-url <url>', 'run it in the replicate daemon at this URL (its --metrics-port), which may hold the chDB directory');
  addConfigOptions(command, BACKFILL_SETTINGS).addHelpText(
    'after',
    `\nProfiles (--profile; explicit flags override single values):\n${Object.entries(BACKFILL_PROFILES)
      .map(
        ([name, p]) =>
          `  ${name.padEnd(8)} chunk ${p.chunkRows}, rate ${p.rateLimit || 'unlimited'}, concurrency ${p.concurrency}, checkpoint every ${p.checkpointEvery}, max rows ${p.maxRows || 'all'}`,
      )
      .join('\n')}`,
  );
  command.action(async () => {
    const action = parseBackfillOptions(command.opts());
    const config = configFrom(command);
    setExitCode(await backfill(action, config, loggerFor(config), (line) => stdout(`${line}\n`)));
  });
  return command;
}

/** Run the action; returns the exit code (0 for SUCCESS and EMPTY). */
export async function backfill(
  action: ReturnType<typeof parseBackfillOptions>,
  config: Config,
  log: Logger,
  out: (line: string) => void,
): Promise<number> {
  const databaseUrl = requireDatabaseUrl(config);
  if (action.kind === 'run' && action.dryRun) {
    await withPostgres(databaseUrl, async (sql) => out(await describePlan(sql, action.request, config)));
    return 0;
  }
  let client: ClickHouseClient | undefined;
  let routes: Awaited<ReturnType<typeof openTargets>> | undefined;
  let ops: OpsServer | undefined;
  let started = false;
  const interrupt = new AbortController();
  const offSignals = onStopSignals((signal) => {
    log.warn({ signal }, 'stopping after the current page; a second signal exits at once');
    interrupt.abort();
  });
  try {
    client = await openClickHouse(config);
    const store = checkpointStoreFor(config, client, log);
    if (action.kind === 'list') {
      out(formatJobs(await store.listJobs()));
      return 0;
    }
    routes = await openTargets(config, client, log, config.backfillRetries);
    // In a daemon's job the client is not this process's terminal: progress as log lines, never bars.
    let progress = progressReporter(log, jobContext() ? false : undefined);
    if (config.metricsPort !== undefined) {
      const metrics = new BackfillMetrics(progress);
      progress = metrics;
      ops = await startOpsServer(
        metrics.registry,
        { problems: async () => [] },
        config.metricsPort,
        config.listenHost,
        log,
        config.metricsToken,
      );
    }
    const context = backfillContextFor(config, client, log, {
      runsTable: new RunsTargets(routes.sink, routes.routing),
      store,
      progress,
      signal: interrupt.signal,
    });
    const createSlot = action.kind === 'resume' ? action.createSlot : action.request.createSlot;
    const result = await withPostgres(databaseUrl, async (sql) => {
      if (createSlot) await refuseSlotAfterGap(sql, config, client as ClickHouseClient, log);
      started = true;
      return action.kind === 'resume'
        ? resumeBackfill(sql, action.jobId, action.createSlot, context, explicitTuning(config))
        : runBackfill(sql, action.request, context);
    });
    out(backfillSummary(result));
    // A job that never read (no slot, no snapshot) could not run: 2. A FAILURE after it read: 1.
    if (result.status === 'FAILURE') return result.started === false ? EXIT_COULD_NOT_RUN : EXIT_FINDING;
    return EXIT_OK;
  } catch (error) {
    // Not started (ClickHouse or Postgres unreachable, a port taken, an unknown job id, ...): could not run, exit 2.
    if (!started || error instanceof UsageError) throw error;
    // Anything that stops the job before it could record a status is still a FAILURE.
    out(`backfill FAILURE: ${(error as Error).message}`);
    return 1;
  } finally {
    offSignals();
    await routes?.close();
    await ops?.close();
    await client?.close();
  }
}

async function describePlan(sql: pg.Client, request: Parameters<typeof planBackfill>[1], config: Config): Promise<string> {
  const tuning = backfillTuning(config);
  const plan: BackfillPlan = await planBackfill(sql, request, tuning.concurrency);
  const slot = await readSlot(sql, config.slot);
  const version =
    request.mode === 'repair'
      ? 'repair: rows get the version of a commit at a fresh snapshot (beat older changes, lose to newer ones)'
      : `default: rows get version 0, so CDC always wins; slot ${config.slot} ${slot ? 'exists' : request.createSlot ? 'will be created' : 'is MISSING (start runs-cdc replicate first, or add --create-slot)'}`;
  const rows = plan.ranges.map((r) => ({
    table: r.table,
    range: `[${r.from ?? 'start'}, ${r.to ?? 'end'})`,
    after: r.cursor ?? '',
    [request.exactCount ? 'rows' : 'estimated rows']: r.estimated,
  }));
  const total = plan.ranges.reduce((n, r) => n + r.estimated, 0);
  return [
    `Backfill plan (dry run: nothing is read or written)`,
    `version rule: ${version}`,
    `tuning (profile ${config.backfillProfile}): chunk ${tuning.chunkRows} rows, rate ${tuning.rateLimit || 'unlimited'} rows/s, concurrency ${tuning.concurrency}, checkpoint every ${tuning.checkpointEvery} pages, max rows ${tuning.maxRows || 'all'}`,
    formatTable(rows),
    `${request.exactCount ? 'rows' : 'estimated rows'} in total: ${total}`,
  ].join('\n');
}

function formatJobs(jobs: JobRecord[]): string {
  if (jobs.length === 0) return 'no backfill jobs yet';
  return formatTable(
    jobs.map((j) => ({
      job: j.jobId,
      status: j.status,
      mode: j.params.mode,
      tables: j.params.tables.join(','),
      range: `[${j.params.from ?? 'start'}, ${j.params.to ?? 'end'})`,
      rows: j.rowsCopied,
      started: j.createdAt,
      updated: j.updatedAt,
      message: j.message.slice(0, 80),
    })),
  );
}

/**
 * --create-slot makes a slot only where nothing was replicated yet. Once ClickHouse holds rows (or
 * records a slot), a new slot would start after a gap nothing repairs; replicate --recreate-slot
 * creates it and repairs the gap (replication/slot-guard.ts).
 */
async function refuseSlotAfterGap(sql: pg.ClientBase, config: Config, client: ClickHouseClient, log: Logger): Promise<void> {
  if (await readSlot(sql, config.slot)) return;
  // replicate's own check, refusing: it throws the sentence naming --recreate-slot.
  const guard = { ledger: new ClickHouseSlotLedger(client, config.clickhouseDatabase), recreateSlot: false, repair: async () => {} };
  await checkSlotIdentity(sql, config.slot, guard, log);
}
