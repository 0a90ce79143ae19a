/** Wiring shared by the commands: config from flags + env, logger, ClickHouse. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Command } from 'commander';
import { CONFIG_SOURCES, type Config, type ConfigKey, loadConfig, redact } from '../config.ts';
import { firstLine, RunsCdcError } from '../errors.ts';
import { createLogger, type Logger } from '../logger.ts';
import { MissingOptionalPackageError } from '../optional.ts';
import { connectClickHouse } from '../sink/clickhouse.ts';
import { pendingMigrations } from '../sink/migrations.ts';
import { RunsTable, type RunsTableOptions } from '../sink/runs-table.ts';
import type { Routing } from '../sink/targets.ts';
import { clickHouseTls } from '../sink/tls.ts';
import { clickHouseTlsError } from '../tls-errors.ts';
import { jobContext } from './job-context.ts';

const BOOLEAN_SETTINGS: ReadonlySet<ConfigKey> = new Set(['fixReplicaIdentity', 'allowPartialIdentity', 'recreateSlot']);

/** Add the flags of the given settings to a command (help text names the env variable too). */
export function addConfigOptions(command: Command, keys: readonly ConfigKey[]): Command {
  for (const key of keys) {
    const { flag, env, help } = CONFIG_SOURCES[key];
    command.option(BOOLEAN_SETTINGS.has(key) ? flag : `${flag} <value>`, `${help} [${env}]`);
  }
  return command;
}

export const CLICKHOUSE_SETTINGS: ConfigKey[] = [
  'clickhouseUrl',
  'clickhouseCaCert',
  'clickhouseClientCert',
  'clickhouseClientKey',
  'chdbPath',
  'clickhouseDatabase',
  'clickhouseRequestTimeoutSeconds',
  'logLevel',
];

/** Commander's name for a flag's value: `--chunk-rows` (or `chunk-rows`) -> `chunkRows`. */
export const attributeName = (flag: string) => flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function configFrom(command: Command): Config {
  const options = command.opts();
  const flags: Partial<Record<ConfigKey, unknown>> = {};
  for (const [key, { flag }] of Object.entries(CONFIG_SOURCES) as Array<[ConfigKey, { flag: string }]>) {
    const value = options[attributeName(flag)];
    if (value !== undefined) flags[key] = value;
  }
  const job = jobContext();
  return job ? { ...loadConfig(flags, job.env), ...job.forced } : loadConfig(flags);
}

export function describeClickHouse(config: Pick<Config, 'clickhouseUrl' | 'chdbPath'>): string {
  return config.clickhouseUrl ? redact(config.clickhouseUrl) : `chDB at ${config.chdbPath}`;
}

/** The embedded engine's directory is held by another process (chDB allows one). */
export class ChdbInUseError extends RunsCdcError {}

/**
 * The pid of a live process holding a chDB directory, from the status file the engine writes
 * (`PID: 123`); undefined when none does (no file, or a stale one left by a killed process).
 */
function chdbHolder(chdbPath: string): number | undefined {
  let pid: number;
  try {
    pid = Number(/^PID: (\d+)/m.exec(readFileSync(join(chdbPath, 'status'), 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/** chDB's directory is held by another process, most likely the daemon, which can run the command instead. */
export const chdbInUse = (chdbPath: string, pid?: number) =>
  new ChdbInUseError(
    `the chDB directory ${chdbPath} is open in another process${pid ? ` (pid ${pid})` : ''} (chDB allows one; is runs-cdc replicate running?): add --api-url http://127.0.0.1:<its --metrics-port> to run backfill, verify, dead-letters or status in it, stop that process, or use a ClickHouse server with CLICKHOUSE_URL`,
  );

/** Connect and check ClickHouse answers, with a message that says where it looked. */
export async function openClickHouse(config: Config): Promise<ClickHouseClient> {
  // Checked before opening: the engine would print its own "Cannot lock file" line to stderr first.
  const holder = config.clickhouseUrl ? undefined : chdbHolder(config.chdbPath);
  if (holder !== undefined) throw chdbInUse(config.chdbPath, holder);
  let client: ClickHouseClient | undefined;
  const tls = clickHouseTls(config, config.clickhouseUrl);
  try {
    client = await connectClickHouse({
      url: config.clickhouseUrl,
      chdbPath: config.chdbPath,
      requestTimeoutMs: config.clickhouseRequestTimeoutSeconds * 1000,
      tls,
    });
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json());
  } catch (error) {
    await client?.close().catch(() => {});
    if (error instanceof MissingOptionalPackageError) throw error;
    // chDB prints "Cannot lock file .../status" to stderr itself and throws only "Failed to create
    // connection"; a live status file is the lock another process holds.
    if (!config.clickhouseUrl && existsSync(join(config.chdbPath, 'status'))) {
      throw chdbInUse(config.chdbPath);
    }
    const given = { caCert: config.clickhouseCaCert !== undefined, clientCert: config.clickhouseClientCert !== undefined };
    const tlsError = config.clickhouseUrl ? clickHouseTlsError(error, config.clickhouseUrl, given) : undefined;
    if (tlsError) throw tlsError;
    throw new RunsCdcError(
      `ClickHouse (${describeClickHouse(config)}) is not reachable: ${firstLine(error)} — check CLICKHOUSE_URL and that the server is up`,
    );
  }
  return client;
}

/** The runs table, failing when migrations are pending. */
export async function openRunsTable(client: ClickHouseClient, config: Config, log: Logger, options?: RunsTableOptions): Promise<RunsTable> {
  const pending = await pendingMigrations(client, config.clickhouseDatabase);
  if (pending.length > 0) {
    throw new RunsCdcError(
      `ClickHouse database ${config.clickhouseDatabase} is missing migrations ${pending.join(', ')}: run runs-cdc migrate first`,
    );
  }
  return RunsTable.fromConfig(client, config, log, options);
}

/**
 * SIGINT/SIGTERM for a long command: the first calls `onFirst` (stop gracefully), a second calls
 * `onSecond` and exits at once with 130. Returns the function that removes the handlers.
 */
export function onStopSignals(
  onFirst: (signal: NodeJS.Signals) => void,
  onSecond: (signal: NodeJS.Signals) => void = () => {},
): () => void {
  const job = jobContext();
  if (job) {
    const abort = () => onFirst('SIGINT');
    job.signal.addEventListener('abort', abort, { once: true });
    return () => job.signal.removeEventListener('abort', abort);
  }
  let signals = 0;
  const handler = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      onSecond(signal);
      process.exit(130);
    }
    onFirst(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

export function loggerFor(config: Config): Logger {
  return jobContext()?.log ?? createLogger(config.logLevel);
}

/** A --routes target's name, its connection and its config (URL and database filled in). */
export interface RouteTarget {
  name: string;
  client: ClickHouseClient;
  config: Config;
}

/**
 * The connections of the --routes targets: each its own connection when it names a URL,
 * `defaultClient` otherwise (another database on the same server or chDB). `close` closes only the
 * connections opened here.
 */
export async function openRouteTargets(
  config: Config,
  defaultClient: ClickHouseClient,
): Promise<{ targets: RouteTarget[]; close(): Promise<void> }> {
  const own: ClickHouseClient[] = [];
  const close = async () => void (await Promise.all(own.map((c) => c.close())));
  const targets: RouteTarget[] = [];
  try {
    for (const [name, target] of Object.entries(config.routes?.targets ?? {})) {
      const targetConfig = {
        ...config,
        clickhouseUrl: target.url ?? config.clickhouseUrl,
        clickhouseDatabase: target.database ?? config.clickhouseDatabase,
      };
      const client = target.url ? await openClickHouse(targetConfig) : defaultClient;
      if (target.url) own.push(client);
      targets.push({ name, client, config: targetConfig });
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { targets, close };
}

/**
 * The runs table of the default target and, with --routes, of every routed target, each checked
 * for pending migrations and all with the same retry limit.
 */
export async function openTargets(
  config: Config,
  defaultClient: ClickHouseClient,
  log: Logger,
  maxRetries?: number,
): Promise<{ sink: RunsTable; routing: Routing<RunsTable> | undefined; close(): Promise<void> }> {
  const sink = await openRunsTable(defaultClient, config, log, { maxRetries });
  if (!config.routes) return { sink, routing: undefined, close: async () => {} };
  const routed = await openRouteTargets(config, defaultClient);
  const targets = new Map<string, RunsTable>();
  try {
    for (const target of routed.targets) targets.set(target.name, await openRunsTable(target.client, target.config, log, { maxRetries }));
  } catch (error) {
    await routed.close();
    throw error;
  }
  log.info(
    { targets: [...targets.keys()], organizations: Object.keys(config.routes.organizations).length },
    'routing organizations to ClickHouse targets',
  );
  return { sink, routing: { targets, organizations: config.routes.organizations }, close: routed.close };
}
