import { type ClickHouseClient, type ClickHouseSettings, createClient } from '@clickhouse/client';
import { loadConfig } from '../src/config.ts';
import { startPostgres } from '../src/embedded/postgres.ts';
import { silentLogger } from '../src/logger.ts';
import { importOptional } from '../src/optional.ts';
import { startReplication } from '../src/replication/start.ts';
import { type ChdbConnection, NOT_ENGINE_SETTINGS, withByteInserts } from '../src/sink/chdb-inserts.ts';
import { connectClickHouse, SESSION_SETTINGS } from '../src/sink/clickhouse.ts';
import { migrate } from '../src/sink/migrations.ts';
import { encodeRow } from '../src/sink/runs-sink.ts';
import { RunsTable } from '../src/sink/runs-table.ts';
import type { ClickHouseRow } from '../src/transform/row.ts';
import { keepResult, loadAverage, median, numberArg, ratioOf } from './args.ts';
import { rowShape, shapeSql } from './rows.ts';
import { daemonBatches, freshStack, machineCoresUsed, machineCpu, mergesSettled } from './stack.ts';

const SHAPE = rowShape(process.argv);
const { columns, generated } = shapeSql(SHAPE);
const RUNS = numberArg('--runs', 100_000);
const ROUNDS = numberArg('--rounds', 4);
/** `--setting name=value` or `--setting=name=value` (repeatable): the byte inserts with and without these engine settings. */
const SETTINGS: ClickHouseSettings = Object.fromEntries(
  process.argv.flatMap((arg, i) => {
    const given =
      arg === '--setting' ? (process.argv[i + 1] ?? '') : arg.startsWith('--setting=') ? arg.slice('--setting='.length) : undefined;
    if (given === undefined) return [];
    const setting = /^(\w+)=(.+)$/.exec(given);
    if (!setting) {
      console.error(`--setting takes name=value (say min_chunk_bytes_for_parallel_parsing=1048576), not "${given}"`);
      process.exit(2);
    }
    if (NOT_ENGINE_SETTINGS.has(setting[1] as string)) {
      console.error(`${setting[1]} is an HTTP setting the engine never sees: both paths would run the same; name an engine setting`);
      process.exit(2);
    }
    return [[setting[1], setting[2]]];
  }),
);

/** chDB's connection, with byte inserts or its own (which makes the body a JS string), and extra settings. */
async function chdbClient(byteInserts: boolean, settings: ClickHouseSettings = {}): Promise<ClickHouseClient> {
  const { createChdbConnection } = await importOptional<{ createChdbConnection(o: { path: string }): ChdbConnection }>(
    'chdb',
    'chdb/connection',
  );
  const own = createChdbConnection({ path: ':memory:' });
  const connection = (byteInserts ? withByteInserts(own) : own) as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'];
  return createClient({ connection, clickhouse_settings: { ...SESSION_SETTINGS, ...settings } });
}

const server = await startPostgres();
const paths: Record<string, ClickHouseClient> =
  Object.keys(SETTINGS).length === 0
    ? { chdbString: await chdbClient(false), bytes: await connectClickHouse({ chdbPath: ':memory:' }) }
    : {
        bytes: await connectClickHouse({ chdbPath: ':memory:' }),
        [`bytes ${new URLSearchParams(SETTINGS as Record<string, string>)}`]: await chdbClient(true, SETTINGS),
      };
const figures: Record<string, Array<{ catchUp: number; ceiling: number; ratio: number; machineCores: number }>> = {};
/** One round on `path`: a backlog of `runs` drained, then the ceiling; kept unless a warm-up. */
async function round(path: string, ch: ClickHouseClient, runs = RUNS, warmUp = false) {
  const stack = await freshStack(server, ch, 'ab');
  const { url, sql, database: name } = stack;
  const config = loadConfig({ databaseUrl: url, clickhouseDatabase: name, slot: `${name}_slot` }, {});
  const table = RunsTable.fromConfig(ch, config, silentLogger);
  // Start once (slot, publication), then write the backlog while it is down.
  await (await startReplication(url, config, table, silentLogger)).stop();
  await sql.query(`INSERT INTO task_run_v2 (${columns}) SELECT ${generated} FROM generate_series(1, $1::int) g`, [runs]);
  await mergesSettled(ch);
  const ticks = machineCpu();
  const started = performance.now();
  const replication = await startReplication(url, config, table, silentLogger);
  await replication.caughtUp(sql);
  const catchUpMs = performance.now() - started;
  const machineCores = machineCoresUsed(ticks);

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

  await migrate(ch, `${name}_raw`);
  const sink = new RunsTable(ch, `${name}_raw`, { initialDelayMs: 500, maxDelayMs: 30_000 }, silentLogger);
  const rows = await (
    await ch.query({ query: `SELECT * FROM ${name}.task_runs_v2 ORDER BY _version`, format: 'JSONEachRow' })
  ).json<ClickHouseRow>();
  const encoded = rows.map(encodeRow);
  await mergesSettled(ch);
  const insertStarted = performance.now();
  for (const batch of daemonBatches(encoded, config)) await sink.writeEncoded(batch);
  const insertMs = performance.now() - insertStarted;
  // Each round starts on an engine and a server holding no earlier round's rows.
  await ch.command({ query: `DROP DATABASE ${name}_raw SYNC` });
  await stack.drop();
  const result = {
    catchUp: Math.round((runs * 1000) / catchUpMs),
    ceiling: Math.round((encoded.length * 1000) / insertMs),
    ratio: ratioOf(insertMs, catchUpMs),
    machineCores,
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
const summary = {
  scenario: 'catch-up-ab',
  rowShape: SHAPE,
  runs: RUNS,
  rounds: ROUNDS,
  settings: SETTINGS,
  medians,
  loadAverage: loadAverage(),
};
console.log(JSON.stringify(summary));
keepResult(`catch-up-ab${SHAPE === 'thin' ? '' : `_${SHAPE}`}`, { ...summary, figures });
