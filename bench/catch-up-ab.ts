/**
 * `node --import tsx bench/catch-up-ab.ts [--rows=realistic] [--rounds N] [--runs N]`: the engine
 * connection's two insert paths side by side, alternating rounds in one process (so the machine's
 * drift between runs falls on both): chDB's own insert (the body made a JS string and joined to the
 * statement) and runs-cdc's (`withByteInserts`: one Buffer to chDB's raw insert). Each round
 * drains a backlog of N runs with the daemon (start to everything confirmed) and then inserts the
 * same rows, encoded, back to back in the daemon's batches (the ceiling); each timed part starts
 * on a quiet engine, after a warm-up round of each; the order alternates from round to round and
 * each round's databases are dropped after it. One JSON line per round, then one with the medians
 * of each path.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type ClickHouseClient, createClient } from '@clickhouse/client';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { startPostgres } from '../src/embedded/postgres.ts';
import { silentLogger } from '../src/logger.ts';
import { importOptional } from '../src/optional.ts';
import { startReplication } from '../src/replication/start.ts';
import { connectClickHouse, SESSION_SETTINGS } from '../src/sink/clickhouse.ts';
import { migrate } from '../src/sink/migrations.ts';
import { encodeRow } from '../src/sink/runs-sink.ts';
import { RunsTable } from '../src/sink/runs-table.ts';
import { createRunsTables } from '../src/source/schema.ts';
import type { ClickHouseRow } from '../src/transform/row.ts';
import { keepResult, loadAverage, numberArg } from './args.ts';
import { rowShape, shapeSql } from './rows.ts';

const SHAPE = rowShape(process.argv);
const { columns, generated } = shapeSql(SHAPE);
const RUNS = numberArg('--runs', 100_000);
const ROUNDS = numberArg('--rounds', 4);

/** Busy and total CPU ticks of the whole machine (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string)
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number) as number[];
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
}

async function mergesSettled(ch: ClickHouseClient): Promise<void> {
  for (let waited = 0; waited < 60_000; waited += 100) {
    const [row] = await (await ch.query({ query: 'SELECT count() AS n FROM system.merges', format: 'JSONEachRow' })).json<{ n: string }>();
    if (Number(row?.n) === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.error('merges still running after 60 s: this phase is timed beside them');
}

/** chDB's own connection, unwrapped: its insert makes the body a JS string. */
async function chdbOwnInserts(): Promise<ClickHouseClient> {
  const { createChdbConnection } = await importOptional<{ createChdbConnection(o: { path: string }): unknown }>('chdb', 'chdb/connection');
  const connection = createChdbConnection({ path: ':memory:' }) as NonNullable<Parameters<typeof createClient>[0]>['connection'];
  return createClient({ connection, clickhouse_settings: SESSION_SETTINGS });
}

const server = await startPostgres();
const paths: Record<string, ClickHouseClient> = {
  chdbString: await chdbOwnInserts(),
  bytes: await connectClickHouse({ chdbPath: ':memory:' }),
};
const figures: Record<string, Array<{ catchUp: number; ceiling: number; ratio: number; machineCores: number }>> = {};
let databases = 0;

/** One round on `path`: a backlog of `runs` drained, then the ceiling; kept unless a warm-up. */
async function round(path: string, ch: ClickHouseClient, runs = RUNS, warmUp = false) {
  databases += 1;
  const name = `ab_${databases}`;
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = server.url.replace(/\/postgres$/, `/${name}`);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  await createRunsTables(sql);
  await migrate(ch, name);
  const config = loadConfig({ databaseUrl: url, clickhouseDatabase: name, slot: `${name}_slot` }, {});
  const table = RunsTable.fromConfig(ch, config, silentLogger);
  // Start once (slot, publication), then write the backlog while it is down.
  await (await startReplication(url, config, table, silentLogger)).stop();
  await sql.query(`INSERT INTO task_run_v2 (${columns}) SELECT ${generated} FROM generate_series(1, $1::int) g`, [runs]);
  await mergesSettled(ch);
  const ticks = machineTicks();
  const started = performance.now();
  const replication = await startReplication(url, config, table, silentLogger);
  await replication.caughtUp(sql);
  const catchUpMs = performance.now() - started;
  const after = machineTicks();
  await replication.stop();
  // Each round's slot is dropped (the server has room for few); its walsender may take a moment to go.
  for (let tries = 0; ; tries++) {
    try {
      await sql.query('SELECT pg_drop_replication_slot($1)', [config.slot]);
      break;
    } catch (error) {
      if (tries >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await sql.end();

  await migrate(ch, `${name}_raw`);
  const sink = new RunsTable(ch, `${name}_raw`, { initialDelayMs: 500, maxDelayMs: 30_000 }, silentLogger);
  const rows = await (
    await ch.query({ query: `SELECT * FROM ${name}.task_runs_v2 ORDER BY _version`, format: 'JSONEachRow' })
  ).json<ClickHouseRow>();
  const encoded = rows.map(encodeRow);
  await mergesSettled(ch);
  const insertStarted = performance.now();
  for (let at = 0; at < encoded.length; at += config.batchRows) await sink.writeEncoded(encoded.slice(at, at + config.batchRows));
  const insertMs = performance.now() - insertStarted;
  // Each round starts on an engine and a server holding no earlier round's rows.
  await ch.command({ query: `DROP DATABASE ${name} SYNC` });
  await ch.command({ query: `DROP DATABASE ${name}_raw SYNC` });
  const dropper = new pg.Client({ connectionString: server.url });
  await dropper.connect();
  await dropper.query(`DROP DATABASE ${name}`);
  await dropper.end();
  const result = {
    catchUp: Math.round((runs * 1000) / catchUpMs),
    ceiling: Math.round((encoded.length * 1000) / insertMs),
    ratio: Number((insertMs / catchUpMs).toFixed(3)),
    machineCores: Number((((after.busy - ticks.busy) / (after.total - ticks.total)) * availableParallelism()).toFixed(2)),
  };
  if (warmUp) return;
  figures[path] = [...(figures[path] ?? []), result];
  console.log(JSON.stringify({ path, rowShape: SHAPE, runs, ...result }));
}

try {
  // Both paths run compiled code before the first measured round.
  for (const [path, ch] of Object.entries(paths)) await round(path, ch, 20_000, true);
  // The order alternates (AB, BA, AB, ...), so neither path always runs right after the other.
  for (let n = 0; n < ROUNDS; n++) {
    const order = Object.entries(paths);
    for (const [path, ch] of n % 2 === 0 ? order : order.reverse()) await round(path, ch);
  }
} finally {
  for (const ch of Object.values(paths)) await ch.close();
  await server.stop();
}
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}
const medians = Object.fromEntries(
  Object.entries(figures).map(([path, rounds]) => [
    path,
    {
      catchUp: Math.round(median(rounds.map((r) => r.catchUp))),
      ceiling: Math.round(median(rounds.map((r) => r.ceiling))),
      ratio: Number(median(rounds.map((r) => r.ratio)).toFixed(3)),
    },
  ]),
);
const summary = { scenario: 'catch-up-ab', rowShape: SHAPE, runs: RUNS, rounds: ROUNDS, medians, loadAverage: loadAverage() };
console.log(JSON.stringify(summary));
keepResult(`catch-up-ab${SHAPE === 'thin' ? '' : `_${SHAPE}`}`, { ...summary, figures });
