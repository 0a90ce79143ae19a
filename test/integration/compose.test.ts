/**
 * The Docker deployment, without Docker: `docker-compose config` (Debian's docker-compose, which
 * needs no engine) resolves the compose file; the Dockerfile's runtime stage is assembled in a
 * directory from exactly what it copies; every runs-cdc service's effective argv (the image's
 * ENTRYPOINT + the service's command) then runs there, in dependency order, against this run's
 * Postgres and ClickHouse — with the service's environment, only the hosts swapped. The replicate
 * service must pass its own healthcheck (run locally) and stop cleanly on SIGTERM.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cliClickHouseEnv } from '../support/backends.ts';
import { cliWorkspace } from '../support/cli.ts';
import { waitFor } from '../support/databases.ts';

const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const hasCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
// .ci/run installs docker-compose and sets this, so CI cannot skip the test silently.
const required = process.env.RUNS_CDC_REQUIRE_COMPOSE === '1';
if (!hasCompose && !required) process.stdout.write('compose.test.ts skipped: install docker-compose (apt-get install docker-compose)\n');

interface ComposeService {
  build?: unknown;
  image?: string;
  entrypoint?: string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  profiles?: string[];
}

/** The final stage of the Dockerfile: what the image holds and how it starts. */
interface RuntimeStage {
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  healthcheck: string[];
  copies: { from?: string; sources: string[]; dest: string }[];
}

function runtimeStage(dockerfile: string): RuntimeStage {
  const instructions = dockerfile
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const last = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));
  const stage: RuntimeStage = { entrypoint: [], cmd: [], env: {}, healthcheck: [], copies: [] };
  for (const line of last) {
    const [keyword, ...rest] = line.split(' ');
    const args = rest.join(' ');
    if (keyword === 'ENTRYPOINT') stage.entrypoint = JSON.parse(args);
    if (keyword === 'CMD') stage.cmd = JSON.parse(args);
    if (keyword === 'HEALTHCHECK') stage.healthcheck = JSON.parse(args.slice(args.indexOf('CMD ') + 4));
    if (keyword === 'ENV') for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) stage.env[k!] = v!;
    if (keyword === 'COPY') {
      const words = rest.filter((w) => !w.startsWith('--') || w.startsWith('--from='));
      const from = words[0]?.startsWith('--from=') ? words.shift()?.slice('--from='.length) : undefined;
      stage.copies.push({ from, sources: words.slice(0, -1), dest: words.at(-1)! });
    }
  }
  return stage;
}

/** The image's /app as a directory: what the runtime stage copies from the context, and from the
 * build stage what the build produces here (dist/ from `npm run build`, node_modules linked). */
function assemble(stage: RuntimeStage, dir: string): void {
  for (const { from, sources, dest } of stage.copies) {
    for (const source of sources) {
      const target = join(dir, dest.endsWith('/') ? join(dest, source.replace(/^.*\/(?=[^/]+\/?$)/, '')) : dest);
      const origin = from ? join(REPO, source.replace(/^\/app\//, '')) : join(REPO, source);
      mkdirSync(join(target, '..'), { recursive: true });
      if (origin.endsWith('node_modules')) symlinkSync(origin, target);
      else cpSync(origin, target, { recursive: true });
    }
  }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });

const workspace = cliWorkspace('compose');
const app = mkdtempSync(join(tmpdir(), 'runs-cdc-image-'));
let services: Record<string, ComposeService>;
let stage: RuntimeStage;

beforeAll(() => {
  if (!hasCompose && !required) return;
  const config = execFileSync('docker-compose', ['-f', 'docker-compose.yml', '--profile', 'backfill', 'config'], {
    cwd: REPO,
    encoding: 'utf8',
  });
  services = (parse(config) as { services: Record<string, ComposeService> }).services;
  stage = runtimeStage(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  assemble(stage, app);
});
afterAll(() => rmSync(app, { recursive: true, force: true }));

it.skipIf(!hasCompose && !required)(
  "every runs-cdc service's argv runs in the image's layout: migrate, then replicate (healthy, SIGTERM exits 0), then the backfill profile",
  async () => {
    const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);
    expect(ours.map(([name]) => name).sort()).toEqual(['backfill', 'migrate', 'replicate']);
    expect(services.replicate?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.backfill?.profiles).toEqual(['backfill']);

    const metricsPort = await freePort();
    /** The service's process as the container would start it, with only the servers swapped. */
    const start = (name: string): { child: ChildProcess; exit: Promise<number | null>; output: () => string } => {
      const service = services[name]!;
      const [file, ...args] = [...(service.entrypoint ?? stage.entrypoint), ...(service.command ?? stage.cmd)] as [string, ...string[]];
      const env: Record<string, string | undefined> = { ...process.env, ...stage.env, ...service.environment };
      delete env.CLICKHOUSE_URL; // the compose host `clickhouse`; the test's own below
      Object.assign(env, cliClickHouseEnv(workspace.chdbPath), {
        DATABASE_URL: workspace.pgdb.url,
        RUNS_CDC_SLOT: workspace.slot,
        RUNS_CDC_METRICS_PORT: String(metricsPort), // 9464 may be taken on a shared machine
      });
      const child = spawn(file, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout?.on('data', (d) => (output += d));
      child.stderr?.on('data', (d) => (output += d));
      const exit = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
      return { child, exit, output: () => output };
    };
    const healthy = (test: string[]) => {
      const [kind, file, ...args] = test as [string, string, ...string[]];
      expect(kind).toBe('CMD');
      const argv = args.map((a) => a.replaceAll('9464', String(metricsPort)));
      return spawnSync(file, argv, { env: { ...process.env, ...stage.env, RUNS_CDC_METRICS_PORT: String(metricsPort) } }).status === 0;
    };

    const migrate = start('migrate');
    expect(await migrate.exit, migrate.output()).toBe(0);

    const replicate = start('replicate');
    try {
      await waitFor(
        'the replicate service to pass its compose healthcheck',
        () => {
          if (replicate.child.exitCode !== null) throw new Error(`replicate exited ${replicate.child.exitCode}: ${replicate.output()}`);
          return healthy(services.replicate!.healthcheck!.test);
        },
        60_000,
      );
      expect(healthy(['CMD', ...stage.healthcheck]), "the image's HEALTHCHECK").toBe(true);
    } finally {
      replicate.child.kill('SIGTERM');
    }
    expect(await replicate.exit, replicate.output()).toBe(0);

    const backfill = start('backfill');
    expect(await backfill.exit, backfill.output()).toBe(0);
    expect(backfill.output()).toMatch(/SUCCESS|EMPTY/);
  },
  120_000,
);
