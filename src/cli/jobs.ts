/**
 * `backfill`, `verify`, `dead-letters` and `status` run by a running daemon for a client, so an
 * operator need not stop `replicate` while it holds the embedded engine's directory (chDB allows
 * one process per directory).
 *
 * The client (`runs-cdc <command> … --api-url http://127.0.0.1:9464`) sends its arguments and the
 * settings it has in its environment to `POST /jobs` on the daemon's metrics port; the daemon
 * runs the very same command in its process, with its own database connections (a client cannot
 * point it elsewhere) and no ports of the job's own, and streams back NDJSON lines: `{"stdout"}`
 * (the command's output), `{"log"}` (its log lines, progress included), then `{"exitCode"}` or
 * `{"error"}`. The client prints them where the command would have and exits with the same code.
 * If the client goes away (Ctrl-C), the job stops as it would on SIGINT.
 */
import type http from 'node:http';
import { type Command, CommanderError } from 'commander';
import pino from 'pino';
import { z } from 'zod';
import { CONFIG_SOURCES, type Config } from '../config.ts';
import { RunsCdcError, UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { commanderExitCode, EXIT_COULD_NOT_RUN, expectedFailure } from './failures.ts';
import { runInJob } from './job-context.ts';
import { buildProgram, forEachCommand } from './program.ts';

export const JOB_COMMANDS = ['backfill', 'verify', 'dead-letters', 'status'] as const;
export const JOBS_PATH = '/jobs';
const MAX_REQUEST_BYTES = 64 * 1024;

export interface RemoteJob {
  apiUrl: string;
  argv: string[];
  /** The bearer token for the daemon's port, from --metrics-token or --api-token (never sent as an argument). */
  token?: string;
}

/** Take `--name value` or `--name=value` out of `args`; the value, or undefined when absent. */
function takeOption(args: string[], name: string): string | undefined {
  const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (at < 0) return undefined;
  const arg = args[at] as string;
  const value = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[at + 1];
  args.splice(at, arg.includes('=') ? 1 : 2);
  if (!value) throw new UsageError(`${name} needs a value`);
  return value;
}

/** A job command's arguments (after `runs-cdc`) with `--api-url <url>`: the URL and the rest; else undefined. */
export function remoteJob(argv: readonly string[]): RemoteJob | undefined {
  if (!(JOB_COMMANDS as readonly string[]).includes(argv[0] ?? '')) return undefined;
  const rest = [...argv];
  if (!rest.some((a) => a === '--api-url' || a.startsWith('--api-url='))) return undefined;
  let apiUrl: string | undefined;
  try {
    apiUrl = takeOption(rest, '--api-url');
  } catch {
    throw new UsageError('--api-url needs the URL of a running runs-cdc replicate --metrics-port, e.g. http://127.0.0.1:9464');
  }
  // Tokens open this client's way to the daemon; as arguments they would reach the daemon's log.
  const token = takeOption(rest, '--metrics-token') ?? takeOption(rest, '--api-token');
  return { apiUrl: apiUrl as string, argv: rest, ...(token ? { token } : {}) };
}

/** The daemon's ops port may want a token: --metrics-token's, else --api-token's (ops/daemon-ops.ts). */
function bearer(flagged: string | undefined): Record<string, string> {
  const token = flagged ?? process.env[CONFIG_SOURCES.metricsToken.env] ?? process.env[CONFIG_SOURCES.apiToken.env];
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The settings of this process's environment, by their variable names (flags travel as arguments). */
function settingsFromEnvironment(): Record<string, string> {
  // Tokens stay here: they open this client's way to the daemon (bearer()), not the job's.
  const names = Object.values(CONFIG_SOURCES)
    .filter((source) => !source.secret)
    .map((source) => source.env);
  return Object.fromEntries(names.flatMap((name) => (process.env[name] === undefined ? [] : [[name, process.env[name] as string]])));
}

/** The client: ask the daemon at `job.apiUrl` to run the command; print what it sends; its exit code. */
export async function runRemoteJob(job: RemoteJob): Promise<number> {
  const controller = new AbortController();
  const stop = () => {
    process.stderr.write('runs-cdc: stopping the job in the daemon (it stops as on SIGINT)\n');
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let response: Response;
  const url = new URL(JOBS_PATH, job.apiUrl);
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(job.token) },
      body: JSON.stringify({ argv: job.argv, env: settingsFromEnvironment() }),
      signal: controller.signal,
    });
  } catch (error) {
    throw new RunsCdcError(`the runs-cdc daemon at ${job.apiUrl} is not reachable: ${(error as Error).message}`);
  }
  if (!response.ok || !response.body) {
    const body = (await response.json().catch(() => ({}))) as { error?: string };
    throw new RunsCdcError(body.error ?? `the daemon at ${job.apiUrl} answered ${response.status} to ${JOBS_PATH}`);
  }
  // Until the daemon says otherwise (an interrupted or cut-off job): could not run, not a finding.
  let exitCode = EXIT_COULD_NOT_RUN;
  let pending = '';
  const handle = (line: string) => {
    if (line === '') return;
    const message = JSON.parse(line) as { stdout?: string; stderr?: string; log?: string; exitCode?: number; error?: string };
    if (message.stdout !== undefined) process.stdout.write(message.stdout);
    if (message.stderr !== undefined) process.stderr.write(message.stderr);
    if (message.log !== undefined) process.stderr.write(`${message.log}\n`);
    if (message.exitCode !== undefined) exitCode = message.exitCode;
    if (message.error !== undefined) {
      process.stderr.write(`runs-cdc: ${message.error}\n`);
      exitCode = EXIT_COULD_NOT_RUN;
    }
  };
  try {
    const decoder = new TextDecoder();
    for await (const chunk of response.body) {
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) handle(line);
    }
    handle(pending);
  } catch (error) {
    if (!controller.signal.aborted) throw new RunsCdcError(`the daemon at ${job.apiUrl} broke off the job: ${(error as Error).message}`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return exitCode;
}

const requestSchema = z.object({
  argv: z.array(z.string().max(10_000)).min(1).max(100),
  env: z.record(z.string(), z.string().max(100_000)).default({}),
});

/** Commander must neither exit the daemon nor print to its stdout: every command of the tree
 * throws (buildProgram) and writes to the job. */
function confine(program: Command, write: (stream: 'stdout' | 'stderr', text: string) => void): void {
  forEachCommand(program, (command) =>
    command.configureOutput({ writeOut: (text) => write('stdout', text), writeErr: (text) => write('stderr', text) }),
  );
}

async function readBody(request: http.IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of request) {
    body += chunk;
    if (body.length > MAX_REQUEST_BYTES) throw new RunsCdcError(`the request is larger than ${MAX_REQUEST_BYTES} bytes`);
  }
  return body;
}

/**
 * The daemon side: a route for the ops server. `config` is the daemon's: the job keeps its
 * databases, slot and publication and opens no ports.
 */
export function jobRoutes(config: Config, log: Logger): (request: http.IncomingMessage, response: http.ServerResponse) => Promise<boolean> {
  const forced: Partial<Config> = {
    databaseUrl: config.databaseUrl,
    clickhouseUrl: config.clickhouseUrl,
    chdbPath: config.chdbPath,
    clickhouseDatabase: config.clickhouseDatabase,
    routes: config.routes,
    slot: config.slot,
    publication: config.publication,
    // ClickHouse TLS, cluster and timeout are the daemon's too: a client must not point the
    // daemon at files of its choosing or connect it differently.
    clickhouseCaCert: config.clickhouseCaCert,
    clickhouseClientCert: config.clickhouseClientCert,
    clickhouseClientKey: config.clickhouseClientKey,
    clickhouseCluster: config.clickhouseCluster,
    clickhouseRequestTimeoutSeconds: config.clickhouseRequestTimeoutSeconds,
    metricsPort: undefined,
    apiPort: undefined,
  };
  return async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://ops').pathname;
    if (path !== JOBS_PATH) return false;
    const refuse = (status: number, error: string) => {
      const body = Buffer.from(JSON.stringify({ error }));
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
      return true;
    };
    if (request.method !== 'POST') return refuse(405, `POST ${JOBS_PATH} with {"argv": ["backfill", …]}`);
    let input: z.infer<typeof requestSchema>;
    try {
      input = requestSchema.parse(JSON.parse(await readBody(request)));
    } catch (error) {
      return refuse(
        400,
        error instanceof RunsCdcError ? error.message : 'the body must be JSON: {"argv": ["verify", "--json"], "env": {}}',
      );
    }
    const [name] = input.argv;
    if (!(JOB_COMMANDS as readonly string[]).includes(name ?? '')) {
      return refuse(400, `the daemon runs ${JOB_COMMANDS.join(', ')}, not ${JSON.stringify(name)}`);
    }

    response.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    const send = (message: object) => {
      if (!response.writableEnded) response.write(`${JSON.stringify(message)}\n`);
    };
    const gone = new AbortController();
    response.on('close', () => {
      if (!response.writableFinished) gone.abort();
    });
    const jobLog = pino({ level: config.logLevel }, { write: (line: string) => send({ log: line.trimEnd() }) });
    let exitCode = 0;
    const program = buildProgram();
    confine(program, (stream, text) => send({ [stream]: text }));
    log.info({ job: input.argv.join(' ') }, 'running a job for a client');
    try {
      await runInJob(
        {
          write: (text) => send({ stdout: text }),
          setExitCode: (code) => {
            exitCode = code;
          },
          env: input.env,
          forced,
          log: jobLog,
          signal: gone.signal,
        },
        () => program.parseAsync(input.argv, { from: 'user' }),
      );
      send({ exitCode });
    } catch (error) {
      const expected = expectedFailure(error);
      if (error instanceof CommanderError) send({ exitCode: commanderExitCode(error) });
      else if (expected !== undefined) send({ error: expected });
      else {
        log.warn({ job: input.argv.join(' '), err: (error as Error).message }, 'a job for a client failed');
        send({ error: 'the job failed; the daemon log has the detail' });
      }
    }
    log.info({ job: input.argv.join(' '), exitCode }, 'job for a client ended');
    response.end();
    return true;
  };
}
