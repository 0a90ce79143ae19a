/**
 * What the replication benches share: a fresh database on both sides, the machine's busy cores
 * and the Postgres server's, a wait for the engine's merges before a timed phase, and the daemon's
 * batches for a ceiling.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import type { RunningPostgres } from '../src/embedded/postgres.ts';
import { migrate } from '../src/sink/migrations.ts';
import type { EncodedRow } from '../src/sink/runs-sink.ts';
import { createRunsTables } from '../src/source/schema.ts';

export interface Stack {
  url: string;
  sql: pg.Client;
  database: string;
  close(): Promise<void>;
  /** Close, then drop both databases (a phase whose data nothing reads after it). */
  drop(): Promise<void>;
}

let dbCounter = 0;
/** A new database in Postgres (runs tables) and ClickHouse (migrated), named `<prefix>_<n>`. */
export async function freshStack(server: RunningPostgres, ch: ClickHouseClient, prefix = 'bench'): Promise<Stack> {
  dbCounter += 1;
  const name = `${prefix}_${dbCounter}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = server.url.replace(/\/postgres$/, `/${name}`);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  await createRunsTables(sql);
  await migrate(ch, name);
  const drop = async () => {
    await sql.end();
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE ${name}`);
    } finally {
      await admin.end();
    }
    await ch.command({ query: `DROP DATABASE ${name} SYNC` });
  };
  return { url, sql, database: name, close: () => sql.end(), drop };
}

/** The machine's CPU time so far (all processes: Postgres's too), busy and total, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = ticks.map(Number) as number[];
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
}
/** Cores the whole machine kept busy since `since` (of availableParallelism()). */
export const machineCoresUsed = (since: { busy: number; total: number }) => {
  const now = machineCpu();
  return Number((((now.busy - since.busy) / (now.total - since.total)) * availableParallelism()).toFixed(2));
};

/** Fields 3 on of /proc/<pid>/stat (after the command name), or undefined once it has exited. */
function statFields(pid: number | string): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
// Indexes into statFields (proc(5) fields 4, 14 to 17): parent pid, utime, stime, cutime, cstime.
const PPID = 1;
const UTIME = 11;
const STIME = 12;
const CUTIME = 13;
const CSTIME = 14;
/** /proc counts CPU time in clock ticks. */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** The postmaster of the server `sql` is connected to: its backend's parent process. */
export async function postmasterPid(sql: pg.ClientBase): Promise<number> {
  const { rows } = await sql.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const backend = statFields(rows[0]?.pid ?? 0);
  if (!backend) throw new Error('the Postgres backend is not a process on this machine: its CPU cannot be read from /proc');
  return Number(backend[PPID]);
}

/**
 * CPU time of one Postgres server so far, in seconds: its postmaster's and every child's (writers,
 * walsenders, background workers), with the children that have exited (a walsender that ended)
 * through the postmaster's cutime and cstime.
 */
export function postgresCpuSeconds(postmaster: number): number {
  for (;;) {
    const before = statFields(postmaster);
    if (!before) throw new Error(`Postgres's postmaster (pid ${postmaster}) has exited`);
    let ticks = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const fields = statFields(pid);
      if (fields && Number(fields[PPID]) === postmaster) ticks += Number(fields[UTIME]) + Number(fields[STIME]);
    }
    const after = statFields(postmaster);
    if (!after) throw new Error(`Postgres's postmaster (pid ${postmaster}) has exited`);
    // A child reaped during the scan may be counted twice or not at all: then scan again.
    if (after[CUTIME] !== before[CUTIME] || after[CSTIME] !== before[CSTIME]) continue;
    ticks += Number(after[UTIME]) + Number(after[STIME]) + Number(after[CUTIME]) + Number(after[CSTIME]);
    return ticks / TICKS_PER_SECOND;
  }
}

/**
 * Wait until the engine runs no merge: each timed phase starts on a quiet engine, so the merges
 * of the phase before (say end to end's parts) do not run on the cores of the next one.
 */
export async function mergesSettled(ch: ClickHouseClient): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 100) {
    const [row] = await (await ch.query({ query: 'SELECT count() AS n FROM system.merges', format: 'JSONEachRow' })).json<{ n: string }>();
    if (Number(row?.n) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.error('merges still running after 60 s: this phase is timed beside them');
}

/**
 * Encoded rows cut as the daemon's buffer cuts a flush (RowBuffer): at most `batchRows` rows, and
 * whole rows while under `batchBytes`.
 */
export function daemonBatches(rows: readonly EncodedRow[], limits: { batchRows: number; batchBytes: number }): EncodedRow[][] {
  const batches: EncodedRow[][] = [];
  let batch: EncodedRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (batch.length > 0 && (bytes >= limits.batchBytes || batch.length >= limits.batchRows)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(row);
    bytes += row.line.length;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}
