import type { ClickHouseClient } from '@clickhouse/client';
import { Command } from 'commander';
import { repairGap } from '../backfill/gap-repair.ts';
import { backfillContextFor } from '../backfill/job.ts';
import { progressReporter } from '../backfill/progress.ts';
import { type Config, requireDatabaseUrl } from '../config.ts';
import type { Logger } from '../logger.ts';
import { formatLsn } from '../lsn.ts';
import { startDaemonOps } from '../ops/daemon-ops.ts';
import { DaemonMetrics } from '../ops/metrics.ts';
import { startApi } from '../queries/http-api.ts';
import { ReplicationDaemon, type SlotGuard } from '../replication/daemon.ts';
import type { ReplicationSnapshot } from '../replication/snapshot.ts';
import { ClickHouseSlotLedger } from '../sink/slot-ledger.ts';
import { RunsTargets } from '../sink/targets.ts';
import { jobRoutes } from './jobs.ts';
import { openQueries } from './query-api.ts';
import { addConfigOptions, CLICKHOUSE_SETTINGS, configFrom, loggerFor, onStopSignals, openClickHouse, openTargets } from './runtime.ts';

const REPLICATE_SETTINGS = [
  'databaseUrl',
  ...CLICKHOUSE_SETTINGS,
  'slot',
  'publication',
  'batchRows',
  'batchBytes',
  'flushIntervalMs',
  'maxBufferedRows',
  'maxBufferedBytes',
  'flushGroups',
  'fixReplicaIdentity',
  'allowPartialIdentity',
  'recreateSlot',
  'onTruncate',
  'retryInitialMs',
  'retryMaxMs',
  'standbyRetryMs',
  'statusIntervalMs',
  'heartbeatIntervalMs',
  'routes',
  'apiPort',
  'metricsPort',
  'listenHost',
  'apiToken',
  'metricsToken',
  'queryTimeoutSeconds',
  'queryMaxMemoryBytes',
] as const;

export function replicateCommand(): Command {
  const command = new Command('replicate').description('stream changes from Postgres into ClickHouse until stopped');
  addConfigOptions(command, REPLICATE_SETTINGS).action(async () => {
    const config = configFrom(command);
    await replicate(config, loggerFor(config));
  });
  return command;
}

/** Run the daemon until SIGINT/SIGTERM (graceful: flush, confirm, exit 0); a second signal exits at once. */
export async function replicate(config: Config, log: Logger): Promise<void> {
  const databaseUrl = requireDatabaseUrl(config);
  const client = await openClickHouse(config);
  const metrics = new DaemonMetrics();
  const routes = await openTargets(config, client, log);
  const daemon = new ReplicationDaemon(
    databaseUrl,
    config,
    routes.sink,
    log,
    {
      flushed: (rows, seconds) => {
        metrics.observer.flushed?.(rows, seconds);
        log.debug({ rows, ms: Math.round(seconds * 1000) }, 'flushed');
      },
    },
    routes.routing,
    slotGuardFor(config, client, new RunsTargets(routes.sink, routes.routing), log),
  );
  // The run-list API and the live page's runs explorer read through one set of connections of their own.
  const queries = config.apiPort === undefined && config.metricsPort === undefined ? undefined : await openQueries(config, log);
  const api =
    queries === undefined || config.apiPort === undefined
      ? undefined
      : await startApi(queries.router, config.apiPort, config.listenHost, log, config.apiToken);
  const ops =
    queries === undefined || config.metricsPort === undefined
      ? undefined
      : await startDaemonOps({
          metrics,
          daemon,
          clickhouse: client,
          databaseUrl,
          port: config.metricsPort,
          host: config.listenHost,
          log,
          settings: config,
          queries: queries.router,
          routes: jobRoutes(config, log),
          token: config.metricsToken,
          dataToken: config.apiToken,
        });
  const offSignals = onStopSignals(
    (signal) => {
      log.info({ signal }, 'stopping: flushing received changes, then confirming them');
      void daemon.stop();
    },
    (signal) => log.warn({ signal }, 'second signal: exiting now without flushing (nothing unwritten was confirmed)'),
  );
  let lastChanges = 0;
  let lastAt = performance.now();
  const summary = setInterval(() => {
    const now = performance.now();
    const snapshot = daemon.snapshot();
    const changesPerSecond = Math.round(((snapshot.stats.changes - lastChanges) * 1000) / (now - lastAt));
    lastChanges = snapshot.stats.changes;
    lastAt = now;
    log.info(progressSummary(snapshot, changesPerSecond), 'replication progress');
  }, 30_000);
  summary.unref();
  try {
    await daemon.run();
    const { confirmedLsn, stats } = daemon.snapshot();
    log.info({ confirmedLsn: formatLsn(confirmedLsn), ...stats }, 'stopped cleanly');
  } finally {
    clearInterval(summary);
    await api?.close();
    await ops?.close();
    await queries?.close();
    await routes.close();
    offSignals();
    await client.close();
  }
}

/** The fields of the 30 s 'replication progress' log line. */
export function progressSummary(snapshot: ReplicationSnapshot, changesPerSecond: number): Record<string, unknown> {
  const { stats, lagSeconds, lagBytes, bufferedRows, confirmedLsn, repairingGap } = snapshot;
  return {
    changesPerSecond,
    lagSeconds: Math.round(lagSeconds * 10) / 10,
    lagBytes,
    ...stats,
    buffered: bufferedRows,
    confirmedLsn: formatLsn(confirmedLsn),
    ...(repairingGap ? { repairingGap } : {}),
  };
}

/**
 * The slot check of replication/slot-guard.ts for `replicate`: records in the configured
 * database, and a repair that runs the snapshot repair backfill (progress logged per checkpoint,
 * job recorded like any backfill) through every target, then tombstones what the snapshot lacks.
 */
export function slotGuardFor(config: Config, client: ClickHouseClient, targets: RunsTargets, log: Logger): SlotGuard {
  return {
    ledger: new ClickHouseSlotLedger(client, config.clickhouseDatabase),
    recreateSlot: config.recreateSlot,
    repair: async (signal) => {
      const context = backfillContextFor(config, client, log, { runsTable: targets, progress: progressReporter(log, false), signal });
      const result = await repairGap(
        context,
        targets.all.map(([, table]) => table),
      );
      log.info(
        result,
        `gap repair ${result.jobId}: ${result.rowsCopied} runs copied, ${result.rowsTombstoned} rows deleted meanwhile tombstoned`,
      );
    },
  };
}
