/**
 * `npm run bench [-- --scale large] [-- --only=throughput,lag]`: four scenarios (hugeTransaction,
 * throughput, lag, idleSlot), each measuring the pipeline and, in the same run, the ceiling it is
 * bounded by. One JSON line per scenario on stdout; a full run also goes to
 * bench/results/<date>_<commit>_<scale>.json with the machine's cores.
 *
 * 1. throughput: rows committed in 1k-row transactions; end to end (first commit to all
 *    confirmed, so all in ClickHouse) beside raw decode (the same WAL read by the same stream
 *    class with no transform or ClickHouse) and raw insert (the same rows, already encoded,
 *    inserted by the same sink in the daemon's batches). Each timed phase starts once the engine
 *    runs no merge (the phase before's parts are merged first). Also both ceilings at once (the
 *    same WAL decoded while the same rows are inserted): what the machine does with both sharing it;
 *    and both coupled as a pipeline with no work of its own (each batch inserted once its rows are
 *    read, the read paused at the daemon's buffer limits): the bound, on these cores, for a daemon
 *    that inserts one batch at a time.
 * 2. lag: a steady 5,000 rows/s; commit-to-confirmed latency of every transaction.
 * 3. huge transaction: one transaction of many rows; peak RSS over the idle daemon's.
 * 4. idle slot: published tables idle while another table is busy; WAL the slot retains.
 *
 * `--rows=thin|realistic` picks the row (bench/rows.ts); `--mix=updates` makes the writes of
 * throughput, lag and the huge transaction the update-heavy mix (each run inserted, 3 status
 * updates, 1 in 10 deleted; the huge transaction updates every run in one statement). pipeline
 * always runs the mix; idle-slot writes another table.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import { loadConfig } from '../src/config.ts';
import { type RunningPostgres, startPostgres } from '../src/embedded/postgres.ts';
import { silentLogger } from '../src/logger.ts';
import { type Lsn, parseLsn } from '../src/lsn.ts';
import { startReplication } from '../src/replication/start.ts';
import { connectClickHouse } from '../src/sink/clickhouse.ts';
import { DiscardingSink } from '../src/sink/discarding-sink.ts';
import { migrate } from '../src/sink/migrations.ts';
import { type EncodedRow, encodeRow } from '../src/sink/runs-sink.ts';
import { RunsTable } from '../src/sink/runs-table.ts';
import { currentWalLsn, readSlot } from '../src/source/catalog.ts';
import { ReplicationStream } from '../src/source/stream.ts';
import { textTupleOf, WireTuple } from '../src/source/wire-tuples.ts';
import type { ClickHouseRow } from '../src/transform/row.ts';
import { keepResult, loadAverage, median, ratioOf } from './args.ts';
import { deleteTenth, mixArg, rowShape, STATUS_ROUNDS, shapeSql, updateStatus } from './rows.ts';
import {
  daemonBatches,
  freshStack,
  machineCoresUsed,
  machineCpu,
  mergesSettled,
  postgresCpuSeconds,
  postmasterPid,
  type Stack,
} from './stack.ts';

const large = process.argv.includes('large');
/** `--name=N` from the command line as a number, or `fallback` when absent. */
const sizeArg = (name: string, fallback: number) =>
  Number(process.argv.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1) ?? fallback);
const SCALE = {
  // --throughput-rows=N: runs of the throughput and pipeline scenarios (cost growth: 100k, 1M, 5M).
  throughputRows: sizeArg('--throughput-rows', large ? 1_000_000 : 100_000),
  lagSeconds: large ? 60 : 10,
  // --huge-rows=N: another size of the one huge transaction (say 1M at the small scale).
  hugeRows: sizeArg('--huge-rows', large ? 1_000_000 : 200_000),
  idleSeconds: large ? 30 : 10,
};
const TX_ROWS = 1_000;
/** Runs replicated before anything is timed: by the throughput scenario (warmUp), and by the pipeline's daemon before its measured WAL. */
const WARM_UP_RUNS = 20_000;

const SHAPE = rowShape(process.argv);
const MIX = mixArg(process.argv);
const { columns: RUN_COLUMNS, generated: GENERATED_RUN } = shapeSql(SHAPE);

/** One bulk INSERT of generated runs (one transaction). */
function insertGenerated(sql: pg.ClientBase, from: number, to: number): Promise<unknown> {
  return sql.query(`INSERT INTO task_run_v2 (${RUN_COLUMNS}) SELECT ${GENERATED_RUN} FROM generate_series($1::int, $2::int) g`, [from, to]);
}

/**
 * The same runs generated ahead into a session-local table (not WAL-logged, not published), so the
 * throughput writer's transactions only copy rows: generating them (md5, string building) made
 * Postgres, on the cores it shares with the daemon, the slowest part, and bounded end to end.
 */
async function prepareGenerated(sql: pg.ClientBase, count: number): Promise<(from: number, to: number) => Promise<unknown>> {
  await sql.query('CREATE TEMP TABLE generated_runs (LIKE task_run_v2 INCLUDING DEFAULTS, g int PRIMARY KEY)');
  await sql.query(`INSERT INTO generated_runs (g, ${RUN_COLUMNS}) SELECT g, ${GENERATED_RUN} FROM generate_series(1, $1::int) g`, [count]);
  return (from, to) =>
    sql.query(`INSERT INTO task_run_v2 (${RUN_COLUMNS}) SELECT ${RUN_COLUMNS} FROM generated_runs WHERE g BETWEEN $1 AND $2`, [from, to]);
}

function configFor(stack: Stack) {
  return loadConfig({ databaseUrl: stack.url, clickhouseDatabase: stack.database, slot: `${stack.database}_slot` }, {});
}

const mib = (bytes: number | bigint, decimals = 0) => Number((Number(bytes) / 2 ** 20).toFixed(decimals));
const perSecond = (rows: number, ms: number) => Math.round((rows * 1000) / ms);
/** Cores kept busy by `cpuSeconds` of CPU over `ms`. */
const cores = (cpuSeconds: number, ms: number) => Number((cpuSeconds / (ms / 1000)).toFixed(2));

/** The raw insert's rows encoded ahead and inserted back to back, at most this many bytes at a time. */
const RAW_INSERT_GROUP_BYTES = 256 * 1024 * 1024;

/**
 * The ceiling of decoding: a slot's WAL (`_raw` unless named) read by the daemon's stream class
 * with nothing done with the changes: each tuple stays where it lies in the message, as the daemon
 * takes it. `decodeValues`: every value is decoded to text as well (what a consumer of the values
 * pays, and what the daemon's stream did until its encoder read the bytes). `onMessage` sees each
 * message's tag and returns true to stop. Each commit is confirmed as it arrives: a consumer must
 * answer keepalives, or the walsender drops a long read (wal_sender_timeout) when it asks for a reply.
 */
function readRawSlot(
  stack: Stack,
  onMessage: (tag: string) => boolean,
  onStart?: () => void,
  {
    slot = `${stack.database}_raw`,
    decodeValues = false,
    onStream,
  }: { slot?: string; decodeValues?: boolean; onStream?: (stream: ReplicationStream) => void } = {},
): Promise<void> {
  let decodedUpTo = 0n;
  let stopping = false;
  return new Promise<void>((resolve, reject) => {
    const stream: ReplicationStream = new ReplicationStream(
      {
        connectionString: stack.url,
        slot,
        publication: 'runs_cdc',
        confirmedLsn: () => decodedUpTo,
        statusIntervalMs: 10_000,
        ...(onStart ? { onStart } : {}),
      },
      (item) => {
        if (item.kind !== 'message' || stopping) return;
        const { tag } = item.message;
        if (decodeValues) decodeTuples(item.message);
        if (tag === 'commit') decodedUpTo = parseLsn(item.message.commitEndLsn as string);
        if (!onMessage(tag)) return;
        stopping = true;
        void stream.stop().then(resolve, reject);
      },
    );
    onStream?.(stream);
    stream.run().catch(reject);
  });
}

/** Every value of a change's tuples as text (the stream hands over WireTuples). */
function decodeTuples(message: Pgoutput.Message): void {
  for (const tuple of [(message as { old?: unknown }).old, (message as { new?: unknown }).new]) {
    if (tuple instanceof WireTuple) textTupleOf(tuple);
  }
}

/**
 * Raw decode of `changes` row changes from a slot (`_raw` unless named); resolves with the count.
 * Counted, not compared with the WAL end: WAL written after the last commit (a checkpoint, a
 * running-transactions record) put the WAL end past every commit, and the read never ended.
 */
async function readChanges(stack: Stack, changes: number, slot?: string): Promise<number> {
  let decoded = 0;
  await readRawSlot(
    stack,
    (tag) => {
      if (tag === 'insert' || tag === 'update' || tag === 'delete') decoded += 1;
      return tag === 'commit' && decoded >= changes;
    },
    undefined,
    slot ? { slot } : {},
  );
  return decoded;
}

/**
 * Both ceilings coupled as the daemon couples them, with none of the daemon's own work: the WAL
 * read as raw decode reads it (from `slot`), and the raw insert's batches (the daemon's cut)
 * inserted one at a time, each once as many changes have been read; the read
 * pauses while the read changes waiting to be inserted reach the daemon's buffer limits (rows or
 * line bytes, whichever first; never under one batch, which the daemon would flush rather than
 * wait for). What a daemon that inserts one batch at a time, with these batches, limits and
 * insert settings, would sustain on these cores if it cost nothing itself.
 */
async function coupledCeiling(
  stack: Stack,
  slot: string,
  sink: RunsTable,
  batches: readonly EncodedRow[][],
  limits: { maxBufferedRows: number; maxBufferedBytes: number },
): Promise<void> {
  const rows = batches.flat();
  // bytesBefore[k]: the line bytes of the first k changes.
  const bytesBefore = new Float64Array(rows.length + 1);
  rows.forEach((row, k) => {
    bytesBefore[k + 1] = (bytesBefore[k] as number) + row.line.length;
  });
  let maxRows = limits.maxBufferedRows;
  let maxBytes = limits.maxBufferedBytes;
  let batchStart = 0;
  for (const batch of batches) {
    const batchEnd = batchStart + batch.length;
    maxRows = Math.max(maxRows, batch.length);
    maxBytes = Math.max(maxBytes, (bytesBefore[batchEnd] as number) - (bytesBefore[batchStart] as number));
    batchStart = batchEnd;
  }
  let read = 0;
  let inserted = 0;
  const full = () =>
    read - inserted >= maxRows || (bytesBefore[Math.min(read, rows.length)] as number) - (bytesBefore[inserted] as number) >= maxBytes;
  let stream: ReplicationStream | undefined;
  let paused = false;
  let readUpTo: { rows: number; wake: () => void } | undefined;
  const reading = readRawSlot(
    stack,
    (tag) => {
      if (tag === 'insert' || tag === 'update' || tag === 'delete') read += 1;
      if (readUpTo && read >= readUpTo.rows) readUpTo.wake();
      if (!paused && full()) {
        paused = true;
        stream?.pause();
      }
      return tag === 'commit' && read >= rows.length;
    },
    undefined,
    { slot, onStream: (s) => (stream = s) },
  );
  for (const batch of batches) {
    const upTo = inserted + batch.length;
    if (read < upTo) await new Promise<void>((wake) => (readUpTo = { rows: upTo, wake }));
    readUpTo = undefined;
    await sink.writeEncoded(batch);
    inserted = upTo;
    if (paused && !full()) {
      paused = false;
      stream?.resume();
    }
  }
  await reading;
}

/**
 * Replicate WARM_UP_RUNS into the engine once, in databases of their own (both dropped after), so
 * what is timed next runs compiled code and a warm engine, as a long-running daemon does. Until
 * the sixth round the throughput scenario's first phase, end to end, paid both alone: in five
 * scratch runs, a process's first 100k-run catch-up ran 13-20% slower than its second.
 */
async function warmUp(server: RunningPostgres, ch: ClickHouseClient): Promise<void> {
  const stack = await freshStack(server, ch, 'warm_up');
  const config = configFor(stack);
  const replication = await startReplication(stack.url, config, RunsTable.fromConfig(ch, config, silentLogger), silentLogger);
  for (let first = 1; first <= WARM_UP_RUNS; first += TX_ROWS) await insertGenerated(stack.sql, first, first + TX_ROWS - 1);
  await replication.caughtUp(stack.sql);
  await replication.stop();
  await stack.sql.query(`SELECT pg_drop_replication_slot('${config.slot}')`);
  await stack.drop();
}

async function throughput(server: RunningPostgres, ch: ClickHouseClient) {
  await warmUp(server, ch);
  const stack = await freshStack(server, ch);
  const config = configFor(stack);
  const rows = SCALE.throughputRows;
  // A second slot, made before the writes, holds the same WAL for the raw-decode ceiling.
  await stack.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await stack.sql.query(`SELECT pg_create_logical_replication_slot('${stack.database}_raw', 'pgoutput')`);
  // A third and a fourth hold it for both ceilings at once, and coupled (below).
  await stack.sql.query(`SELECT pg_create_logical_replication_slot('${stack.database}_both', 'pgoutput')`);
  await stack.sql.query(`SELECT pg_create_logical_replication_slot('${stack.database}_coupled', 'pgoutput')`);
  const insertPrepared = await prepareGenerated(stack.sql, 2 * rows);
  const postmaster = await postmasterPid(stack.sql);
  /** Runs from..to of the prepared ones, committed in transactions of TX_ROWS; with the
   * update-heavy mix then moved through STATUS_ROUNDS and 1 in 10 deleted, as pipeline does. */
  const writeRange = async (from: number, to: number) => {
    for (let first = from; first <= to; first += TX_ROWS) await insertPrepared(first, Math.min(first + TX_ROWS - 1, to));
    if (MIX === 'inserts') return;
    for (const status of STATUS_ROUNDS) {
      for (let first = from; first <= to; first += TX_ROWS) await updateStatus(stack.sql, first, Math.min(first + TX_ROWS - 1, to), status);
    }
    for (let first = from; first <= to; first += TX_ROWS * 10) await deleteTenth(stack.sql, first, Math.min(first + TX_ROWS * 10 - 1, to));
  };
  // Row changes the WAL carries for `rows` runs (rows is a multiple of 10).
  const changes = MIX === 'inserts' ? rows : rows * (1 + STATUS_ROUNDS.length) + rows / 10;
  const table = RunsTable.fromConfig(ch, config, silentLogger);
  const replication = await startReplication(stack.url, config, table, silentLogger);
  await mergesSettled(ch);
  const e2ePhase = startPhase(postmaster);
  await writeRange(1, rows);
  const written = performance.now();
  await replication.caughtUp(stack.sql);
  const e2eRun = e2ePhase.stop();
  await replication.stop();

  // Raw decode: the same WAL, the same stream class, nothing done with the changes.
  await mergesSettled(ch);
  const decodePhase = startPhase(postmaster);
  const decoded = await readChanges(stack, changes);
  const decodeRun = decodePhase.stop();

  // Raw insert: the same rows, already encoded (read back from ClickHouse and encoded, untimed),
  // inserted by the same sink in the daemon's batches (batchRows rows or batchBytes bytes,
  // whichever comes first), back to back as the daemon inserts during a catch-up: each group of
  // batches (up to RAW_INSERT_GROUP_BYTES) is timed as a whole, so the engine's merges that run
  // while it inserts count, as they do for the daemon. (Until the third round each insert was
  // timed alone, and the reads between them gave the merges untimed room.)
  /** A new runs table, `<database>_<suffix>`, that a ceiling inserts into. */
  const ceilingTable = async (suffix: string) => {
    await migrate(ch, `${stack.database}_${suffix}`);
    return new RunsTable(ch, `${stack.database}_${suffix}`, { initialDelayMs: 500, maxDelayMs: 30_000 }, silentLogger);
  };
  const sink = await ceilingTable('raw');
  let inserted = 0;
  let insertMs = 0;
  let insertCpuMicros = 0;
  let lastVersion = '0';
  // Every group is kept for the shared and coupled ceilings (a bench: 100k realistic rows are ~400 MB).
  const groups: EncodedRow[][][] = [];
  while (inserted < changes) {
    const groupRowList: EncodedRow[] = [];
    let groupRows = 0;
    let groupBytes = 0;
    // As many rows as the daemon wrote (one per change): with the update-heavy mix, merges may
    // already have folded versions together, so the rows held are inserted again until that count.
    while (inserted + groupRows < changes && groupBytes < RAW_INSERT_GROUP_BYTES) {
      const page = await (
        await ch.query({
          query: `SELECT * FROM ${stack.database}.task_runs_v2 WHERE _version > {after:UInt128} ORDER BY _version LIMIT {n:UInt32}`,
          query_params: { after: lastVersion, n: Math.min(config.batchRows, changes - inserted - groupRows) },
          format: 'JSONEachRow',
        })
      ).json<ClickHouseRow>();
      if (page.length === 0) {
        if (lastVersion === '0') throw new Error('the raw insert found no rows to insert: the end-to-end phase wrote none');
        lastVersion = '0';
        continue;
      }
      lastVersion = String(page.at(-1)?._version);
      for (const row of page.map(encodeRow)) {
        groupRowList.push(row);
        groupBytes += row.line.length;
      }
      groupRows += page.length;
    }
    // Cut as one run of rows, as the daemon cuts its buffer: until the seventh round each page was
    // cut on its own, and realistic rows (16 MiB batches of ~4k rows) made a short batch per page.
    const group = daemonBatches(groupRowList, config);
    if (inserted === 0) await mergesSettled(ch);
    const groupStarted = performance.now();
    const groupCpu = process.cpuUsage();
    for (const batch of group) await sink.writeEncoded(batch);
    const { user, system } = process.cpuUsage(groupCpu);
    insertCpuMicros += user + system;
    insertMs += performance.now() - groupStarted;
    inserted += groupRows;
    groups.push(group);
  }
  const insertCores = cores(insertCpuMicros / 1e6, insertMs);
  await stack.sql.query(`SELECT pg_drop_replication_slot('${stack.database}_raw')`);

  // Both ceilings at once: the same rows, encoded before the timing starts, inserted (into a third
  // table) while the same WAL is read (from the third slot), each job on its own, sharing the cores
  // as a catch-up shares them (no writer). Against it, what the daemon loses beyond the sharing
  // shows, line writing included. Not a strict bound: this read never waits, while the daemon's
  // reader waits at its buffer's limit.
  const bothSink = await ceilingTable('both');
  await mergesSettled(ch);
  const bothPhase = startPhase(postmaster);
  await Promise.all([
    readChanges(stack, changes, `${stack.database}_both`),
    (async () => {
      for (const group of groups) for (const batch of group) await bothSink.writeEncoded(batch);
    })(),
  ]);
  const bothRun = bothPhase.stop();
  await stack.sql.query(`SELECT pg_drop_replication_slot('${stack.database}_both')`);

  const coupledSink = await ceilingTable('coupled');
  await mergesSettled(ch);
  const coupledPhase = startPhase(postmaster);
  await coupledCeiling(stack, `${stack.database}_coupled`, coupledSink, groups.flat(), config);
  const coupledRun = coupledPhase.stop();
  groups.length = 0;
  await stack.sql.query(`SELECT pg_drop_replication_slot('${stack.database}_coupled')`);

  // Catch-up: the same number of rows written while the daemon is down, then drained. Live end to
  // end cannot beat the writer sharing these cores; this is what the pipeline itself sustains.
  // Into an emptied table, as both ceilings insert into new ones: until the sixth round its parts
  // also merged with the end-to-end phase's, work the ceilings never did (no effect shown in 3 runs).
  await writeRange(rows + 1, 2 * rows);
  await ch.command({ query: `TRUNCATE TABLE ${stack.database}.task_runs_v2` });
  const backlogEnd = await currentWalLsn(stack.sql);
  await mergesSettled(ch);
  const catchUpPhase = startPhase(postmaster);
  const eluBefore = performance.eventLoopUtilization();
  const restarted = await startReplication(stack.url, config, table, silentLogger);
  await restarted.daemon.waitForConfirmed(backlogEnd);
  const catchUpRun = catchUpPhase.stop();
  const elu = performance.eventLoopUtilization(eluBefore);
  await restarted.stop();
  await stack.close();

  // Rows here are row changes (with the update-heavy mix: inserts, updates and deletes).
  const e2e = perSecond(changes, e2eRun.ms);
  const rawDecode = perSecond(decoded, decodeRun.ms);
  const rawInsert = perSecond(inserted, insertMs);
  const catchUp = perSecond(changes, catchUpRun.ms);
  const shared = perSecond(changes, bothRun.ms);
  const coupled = perSecond(changes, coupledRun.ms);
  const ceiling = Math.min(rawDecode, rawInsert);
  return {
    scenario: 'throughput',
    rowShape: SHAPE,
    mix: MIX,
    rows,
    changes,
    transactionRows: TX_ROWS,
    e2eRowsPerSecond: e2e,
    postgresWriteRowsPerSecond: perSecond(changes, written - e2ePhase.started),
    rawDecodeRowsPerSecond: rawDecode,
    rawInsertRowsPerSecond: rawInsert,
    // CPU of this process (Node and the in-process engine; Postgres not included), in cores.
    e2eDaemonCores: e2eRun.cores,
    // The whole machine (Postgres's writer and walsender too): at the core count, CPU is the bound.
    e2eMachineCores: e2eRun.machineCores,
    // The Postgres server (writer, walsender, background workers), and this process's main thread
    // (the daemon's reader, encoder and buffer; the engine, V8's GC and compiler helpers and libuv
    // run on the other threads), in cores.
    e2ePostgresCores: e2eRun.postgresCores,
    e2eThreadCores: e2eRun.threadCores,
    rawDecodeCores: decodeRun.cores,
    rawDecodeThreadCores: decodeRun.threadCores,
    rawDecodePostgresCores: decodeRun.postgresCores,
    rawInsertCores: insertCores,
    ratio: ratioOf(e2e, ceiling),
    // Raw decode and raw insert run at once (each row decoded and inserted, sharing the cores).
    sharedCeilingRowsPerSecond: shared,
    ratioToShared: ratioOf(e2e, shared),
    sharedCores: bothRun.cores,
    sharedThreadCores: bothRun.threadCores,
    sharedPostgresCores: bothRun.postgresCores,
    sharedMachineCores: bothRun.machineCores,
    // Both coupled as a pipeline with no work of its own (coupledCeiling): end to end's bound while
    // the daemon inserts one batch at a time.
    coupledCeilingRowsPerSecond: coupled,
    coupledRatio: ratioOf(coupled, ceiling),
    coupledMachineCores: coupledRun.machineCores,
    coupledCores: coupledRun.cores,
    coupledPostgresCores: coupledRun.postgresCores,
    coupledThreadCores: coupledRun.threadCores,
    catchUpRowsPerSecond: catchUp,
    catchUpRatio: ratioOf(catchUp, ceiling),
    catchUpRatioToShared: ratioOf(catchUp, shared),
    catchUpRatioToCoupled: ratioOf(catchUp, coupled),
    catchUpDaemonCores: catchUpRun.cores,
    catchUpMachineCores: catchUpRun.machineCores,
    catchUpPostgresCores: catchUpRun.postgresCores,
    catchUpThreadCores: catchUpRun.threadCores,
    catchUpEventLoopBusy: Number(elu.utilization.toFixed(2)),
    decodedRows: decoded,
    peakBufferedRows: replication.daemon.buffer.stats.highWaterRows,
    loadAverage: loadAverage(),
  };
}

async function lag(server: RunningPostgres, ch: ClickHouseClient) {
  const stack = await freshStack(server, ch);
  const config = configFor(stack);
  const replication = await startReplication(stack.url, config, RunsTable.fromConfig(ch, config, silentLogger), silentLogger);
  const txRows = 100;
  const intervalMs = 20; // 100 rows every 20 ms: 5,000 rows/s
  const latencies: number[] = [];
  const pending: Array<Promise<void>> = [];
  const deadline = performance.now() + SCALE.lagSeconds * 1000;
  let next = performance.now();
  let from = 1;
  let changes = 0;
  // --mix=updates: every fourth tick inserts 100 runs, the three after it move those runs through
  // STATUS_ROUNDS, the last of them also deleting 1 in 10.
  for (let tick = 0; performance.now() < deadline; tick++) {
    const round = MIX === 'inserts' ? 0 : tick % (1 + STATUS_ROUNDS.length);
    if (round === 0) {
      await insertGenerated(stack.sql, from, from + txRows - 1);
      from += txRows;
    } else {
      await updateStatus(stack.sql, from - txRows, from - 1, STATUS_ROUNDS[round - 1] as string);
      if (round === STATUS_ROUNDS.length) await deleteTenth(stack.sql, from - txRows, from - 1);
    }
    changes += txRows + (round === STATUS_ROUNDS.length ? txRows / 10 : 0);
    const committed = performance.now();
    // Every change of this transaction ends before the WAL position read right after its commit.
    const lsn: Lsn = await currentWalLsn(stack.sql);
    pending.push(replication.daemon.waitForConfirmed(lsn).then(() => void latencies.push(performance.now() - committed)));
    next += intervalMs;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  await Promise.all(pending);
  await replication.stop();
  await stack.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number);
  return {
    scenario: 'lag',
    rowShape: SHAPE,
    mix: MIX,
    seconds: SCALE.lagSeconds,
    targetRowsPerSecond: (txRows * 1000) / intervalMs,
    achievedRowsPerSecond: perSecond(changes, SCALE.lagSeconds * 1000),
    transactions: latencies.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: Math.round(latencies.at(-1) ?? 0),
    flushIntervalMs: config.flushIntervalMs,
  };
}

async function hugeTransaction(server: RunningPostgres, ch: ClickHouseClient, engine = true) {
  const stack = await freshStack(server, ch);
  const config = configFor(stack);
  // Without the engine: the daemon's own memory, every batch encoded as for ClickHouse and dropped.
  const sink = engine ? RunsTable.fromConfig(ch, config, silentLogger) : new DiscardingSink();
  const replication = await startReplication(stack.url, config, sink, silentLogger);
  await insertGenerated(stack.sql, 1, 1_000); // warm every path once
  // --mix=updates: the one transaction updates runs written (and replicated) before it, so each
  // change carries the old and the new tuple.
  await replication.caughtUp(stack.sql);
  global.gc?.();
  // Before the runs the update-heavy transaction updates were written: inserting them leaves RSS
  // higher (a heap V8 keeps, the engine's parts), which the idle figure below then includes.
  const rssBeforeRuns = process.memoryUsage().rss;
  if (MIX === 'updates') await insertGenerated(stack.sql, 1_001, SCALE.hugeRows + 1_000);
  await replication.caughtUp(stack.sql);
  global.gc?.();
  const idle = process.memoryUsage();
  const idleRss = idle.rss;
  // JS heap + buffers: the daemon's own memory, apart from the in-process engine's.
  const idleJs = idle.heapUsed + idle.external;
  // Everything outside V8's committed heap and Node's buffers: mostly the in-process engine.
  const outsideJs = (m: NodeJS.MemoryUsage) => m.rss - m.heapTotal - m.external;
  const idleOutsideJs = outsideJs(idle);
  let peakOutsideJs = idleOutsideJs;
  let peakRss = idleRss;
  let peakJs = idleJs;
  let peakLiveJs = idleJs;
  let samples = 0;
  const sampler = setInterval(() => {
    // Every 10th sample after a full collection: the heap actually held, not garbage awaiting GC.
    samples += 1;
    const collected = samples % 10 === 0 && global.gc !== undefined;
    if (collected) global.gc?.();
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakOutsideJs = Math.max(peakOutsideJs, outsideJs(now));
    peakJs = Math.max(peakJs, now.heapUsed + now.external);
    if (collected) peakLiveJs = Math.max(peakLiveJs, now.heapUsed + now.external);
  }, 50);
  // One statement: one transaction.
  if (MIX === 'updates') await stack.sql.query(`UPDATE task_run_v2 SET status = 'EXECUTING', "updatedAt" = "updatedAt" + interval '1 s'`);
  else await insertGenerated(stack.sql, 1_001, SCALE.hugeRows + 1_000);
  await replication.caughtUp(stack.sql);
  clearInterval(sampler);
  const { highWaterRows } = replication.daemon.buffer.stats;
  await replication.stop();
  await stack.close();
  return {
    scenario: engine ? 'huge-transaction' : 'huge-transaction-without-engine',
    rowShape: SHAPE,
    mix: MIX,
    // Row changes in the one transaction (the update also touches the 1,000 warm-up runs).
    rows: SCALE.hugeRows + (MIX === 'updates' ? 1_000 : 0),
    idleBeforeRunsRssMiB: mib(rssBeforeRuns),
    idleRssMiB: mib(idleRss),
    peakRssMiB: mib(peakRss),
    peakOverIdleMiB: mib(peakRss - idleRss),
    outsideJsPeakOverIdleMiB: mib(peakOutsideJs - idleOutsideJs),
    jsHeapIdleMiB: mib(idleJs),
    jsHeapPeakOverIdleMiB: mib(peakJs - idleJs),
    jsLiveHeapPeakOverIdleMiB: mib(peakLiveJs - idleJs),
    maxBufferedRows: config.maxBufferedRows,
    peakBufferedRows: highWaterRows,
    bufferLimitHeld: highWaterRows <= config.maxBufferedRows,
    loadAverage: loadAverage(),
  };
}

/** 3b. The huge transaction with a DiscardingSink: ClickHouse out of the process. */
const hugeTransactionWithoutEngine = (server: RunningPostgres, ch: ClickHouseClient) => hugeTransaction(server, ch, false);

async function idleSlot(server: RunningPostgres, ch: ClickHouseClient) {
  const stack = await freshStack(server, ch);
  const config = configFor(stack);
  const replication = await startReplication(stack.url, config, RunsTable.fromConfig(ch, config, silentLogger), silentLogger);
  await stack.sql.query('CREATE TABLE busy (id serial PRIMARY KEY, body text)');
  const retained = async () => {
    const { rows } = await stack.sql.query<{ bytes: string }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS bytes FROM pg_replication_slots WHERE slot_name = $1`,
      [config.slot],
    );
    return Number(rows[0]?.bytes ?? 0);
  };
  const before = await currentWalLsn(stack.sql);
  let maxRetained = 0;
  const deadline = performance.now() + SCALE.idleSeconds * 1000;
  let lastSample = 0;
  while (performance.now() < deadline) {
    await stack.sql.query(`INSERT INTO busy (body) SELECT repeat('x', 500) FROM generate_series(1, 1000)`);
    if (performance.now() - lastSample > 1000) {
      lastSample = performance.now();
      maxRetained = Math.max(maxRetained, await retained());
    }
  }
  const walWritten = (await currentWalLsn(stack.sql)) - before;
  await new Promise((r) => setTimeout(r, config.statusIntervalMs + 500)); // one status round after the writes
  const finalRetained = await retained();
  const slotState = await readSlot(stack.sql, config.slot);
  await replication.stop();
  await stack.close();
  return {
    scenario: 'idle-slot',
    seconds: SCALE.idleSeconds,
    otherTableWalMiB: mib(walWritten, 1),
    maxRetainedMiB: mib(maxRetained, 1),
    retainedAfterMiB: mib(finalRetained, 1),
    slotActive: slotState?.active ?? false,
  };
}

const PROFILE = process.argv.includes('--profile');

/**
 * `--profile`: a CPU profile of the daemon's part of the pipeline scenario only (written for
 * Chrome DevTools / speedscope), and its top functions by self time.
 */
async function startProfiler() {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    async stop(path: string) {
      const { profile } = (await post('Profiler.stop')) as { profile: CpuProfile };
      session.disconnect();
      writeFileSync(path, JSON.stringify(profile));
      return { path, topSelfTime: topSelfTime(profile, 15) };
    },
  };
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

/** Functions by share of the busy (not idle) samples, as "name file: percent". */
function topSelfTime(profile: CpuProfile, count: number): string[] {
  const ticks = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    ticks.set(id, (ticks.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)' || functionName === '(program)') continue;
    const time = ticks.get(node.id) ?? 0;
    busy += time;
    const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + time);
  }
  return [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, time]) => `${name}: ${((100 * time) / busy).toFixed(1)}%`);
}

/** CPU time of this process's main thread (where the daemon runs), in µs; Linux's per-thread schedstat. */
function mainThreadCpuMicros(): number {
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
}

interface Mark {
  at: number;
  threadCpu: number;
  processCpu: NodeJS.CpuUsage;
}
const mark = (): Mark => ({ at: performance.now(), threadCpu: mainThreadCpuMicros(), processCpu: process.cpuUsage() });

/**
 * One timed phase of the throughput scenario: from here to stop(), its time and the cores kept
 * busy by this process (Node and the engine), its main thread, the Postgres server and the machine.
 */
function startPhase(postmaster: number) {
  const start = mark();
  const machine = machineCpu();
  const postgres = postgresCpuSeconds(postmaster);
  return {
    started: start.at,
    stop() {
      const ms = performance.now() - start.at;
      const { user, system } = process.cpuUsage(start.processCpu);
      return {
        ms,
        cores: cores((user + system) / 1e6, ms),
        threadCores: cores((mainThreadCpuMicros() - start.threadCpu) / 1e6, ms),
        postgresCores: cores(postgresCpuSeconds(postmaster) - postgres, ms),
        machineCores: machineCoresUsed(machine),
      };
    },
  };
}

/** rows/s, µs of main-thread CPU per row and cores of the whole process between two marks. */
function between(from: Mark, to: Mark, rows: number) {
  const ms = to.at - from.at;
  const { user, system } = process.cpuUsage(from.processCpu);
  const { user: userTo, system: systemTo } = process.cpuUsage(to.processCpu);
  return {
    rows,
    rowsPerSecond: perSecond(rows, ms),
    threadMicrosPerRow: Number(((to.threadCpu - from.threadCpu) / rows).toFixed(2)),
    processCores: cores((user + system - (userTo + systemTo)) / 1e6, ms),
  };
}

/**
 * 5. pipeline: the daemon's own cost per row, ClickHouse out of the process. The same WAL (runs
 * inserted in 1k-row transactions, then three status updates of each, then 1 run in 10 deleted)
 * read three times from a backlog, after a warm-up: by the raw decode (the stream class, nothing
 * done with the changes: each tuple stays offsets into its message, as the daemon reads it), by
 * the raw decode with every value decoded to text (what reading the values costs any consumer,
 * and the ceiling until the third round), and by the real daemon writing to a DiscardingSink (every
 * batch encoded exactly as for ClickHouse, then dropped). Per phase: rows/s and main-thread CPU
 * µs per row of each, and the daemon's ratio to both.
 */

async function pipeline(server: RunningPostgres, ch: ClickHouseClient) {
  const stack = await freshStack(server, ch);
  const config = configFor(stack);
  const rows = SCALE.throughputRows;
  const sink = new DiscardingSink();
  const insertPrepared = await prepareGenerated(stack.sql, rows + WARM_UP_RUNS);
  // Warm up: the daemon reads runs of the same shape once, so the reads measured below (the raw
  // ones and the daemon's) all run compiled code, as a long-running daemon does; before this the
  // daemon's first phase paid the compiler and the raw reads did not. Its slot then holds
  // everything written next.
  const warmUp = await startReplication(stack.url, config, new DiscardingSink(), silentLogger);
  for (let first = rows + 1; first <= rows + WARM_UP_RUNS; first += TX_ROWS) {
    await insertPrepared(first, Math.min(first + TX_ROWS - 1, rows + WARM_UP_RUNS));
  }
  await warmUp.daemon.waitForConfirmed(await currentWalLsn(stack.sql));
  await warmUp.stop();
  for (const slot of ['_raw', '_raw_text']) {
    await stack.sql.query(`SELECT pg_create_logical_replication_slot('${stack.database}${slot}', 'pgoutput')`);
  }
  const phases: Array<{ name: 'insert' | 'update' | 'delete'; rows: number; end: Lsn }> = [];
  for (let first = 1; first <= rows; first += TX_ROWS) await insertPrepared(first, Math.min(first + TX_ROWS - 1, rows));
  phases.push({ name: 'insert', rows, end: await currentWalLsn(stack.sql) });
  // --inserts-only: the insert phase alone (the largest cost-growth size in the time a run has).
  if (!process.argv.includes('--inserts-only')) {
    for (const status of STATUS_ROUNDS) {
      for (let first = 1; first <= rows; first += TX_ROWS)
        await updateStatus(stack.sql, first, Math.min(first + TX_ROWS - 1, rows), status);
    }
    phases.push({ name: 'update', rows: rows * STATUS_ROUNDS.length, end: await currentWalLsn(stack.sql) });
    for (let first = 1; first <= rows; first += TX_ROWS * 10) await deleteTenth(stack.sql, first, Math.min(first + TX_ROWS * 10 - 1, rows));
    phases.push({ name: 'delete', rows: Math.floor(rows / 10), end: await currentWalLsn(stack.sql) });
  }

  // Raw decode: a mark when the last change of each phase arrives; once as the daemon's stream
  // reads tuples (where each value lies), once with every value decoded to text as well.
  const rawRead = async (slot: string, decodeValues: boolean): Promise<Mark[]> => {
    const counts: Record<string, number> = { insert: 0, update: 0, delete: 0 };
    const marks: Mark[] = [];
    let phase = 0;
    const onMessage = (tag: string) => {
      if (tag !== 'insert' && tag !== 'update' && tag !== 'delete') return false;
      counts[tag] = (counts[tag] ?? 0) + 1;
      const current = phases[phase];
      if (!current || tag !== current.name || counts[tag] !== current.rows) return false;
      marks.push(mark());
      phase += 1;
      return phase === phases.length;
    };
    await readRawSlot(stack, onMessage, () => marks.push(mark()), { slot, decodeValues });
    return marks;
  };
  const rawMarks = await rawRead(`${stack.database}_raw`, false);
  const rawTextMarks = await rawRead(`${stack.database}_raw_text`, true);

  // The daemon: a mark when each phase's last change is confirmed (so written to the sink).
  const profiler = PROFILE ? await startProfiler() : undefined;
  // RSS through the daemon's read of the backlog over what the process held just before it: the
  // daemon's own memory (no engine in this scenario) must not grow with the backlog's size.
  global.gc?.();
  const before = process.memoryUsage();
  const rssBefore = before.rss;
  let peakRss = rssBefore;
  let peakHeapTotal = before.heapTotal;
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peakRss = Math.max(peakRss, now.rss);
    peakHeapTotal = Math.max(peakHeapTotal, now.heapTotal); // V8's committed heap, garbage included
  }, 50);
  const replication = await startReplication(stack.url, config, sink, silentLogger);
  const daemonMarks: Mark[] = [mark()];
  for (const phase of phases) {
    await replication.daemon.waitForConfirmed(phase.end);
    daemonMarks.push(mark());
  }
  clearInterval(sampler);
  // What the daemon still holds after the whole backlog (live heap after a full collection).
  global.gc?.();
  const liveAfter = process.memoryUsage().heapUsed;
  await replication.stop();
  const profile = await profiler?.stop(`bench/results/pipeline-${SHAPE}.cpuprofile`);
  for (const slot of ['_raw', '_raw_text']) await stack.sql.query(`SELECT pg_drop_replication_slot('${stack.database}${slot}')`);
  await stack.close();

  const figures: Record<string, unknown> = { scenario: 'pipeline', rowShape: SHAPE, runs: rows, transactionRows: TX_ROWS };
  phases.forEach((phase, i) => {
    const raw = between(rawMarks[i] as Mark, rawMarks[i + 1] as Mark, phase.rows);
    const rawText = between(rawTextMarks[i] as Mark, rawTextMarks[i + 1] as Mark, phase.rows);
    const daemon = between(daemonMarks[i] as Mark, daemonMarks[i + 1] as Mark, phase.rows);
    const figuresOf = (m: typeof raw) => ({
      rowsPerSecond: m.rowsPerSecond,
      threadMicrosPerRow: m.threadMicrosPerRow,
      processCores: m.processCores,
    });
    figures[phase.name] = {
      rows: phase.rows,
      rawDecode: figuresOf(raw),
      rawDecodeToText: figuresOf(rawText),
      daemon: figuresOf(daemon),
      ratio: ratioOf(daemon.rowsPerSecond, raw.rowsPerSecond),
      ratioToText: ratioOf(daemon.rowsPerSecond, rawText.rowsPerSecond),
      cpuRatio: ratioOf(raw.threadMicrosPerRow, daemon.threadMicrosPerRow),
      cpuRatioToText: ratioOf(rawText.threadMicrosPerRow, daemon.threadMicrosPerRow),
    };
  });
  figures.rowsWritten = sink.stats.rowsWritten;
  figures.bytesEncodedMiB = mib(sink.bytesEncoded, 1);
  figures.daemonRssBeforeMiB = mib(rssBefore);
  figures.daemonPeakRssOverBeforeMiB = mib(peakRss - rssBefore);
  figures.daemonPeakHeapTotalOverBeforeMiB = mib(peakHeapTotal - before.heapTotal);
  figures.daemonLiveHeapAfterOverBeforeMiB = mib(liveAfter - before.heapUsed, 1);
  if (profile) figures.profile = profile;
  figures.loadAverage = loadAverage();
  return figures;
}

const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
// The huge transaction first: its idle baseline must not carry the other scenarios' memory.
const all = [hugeTransactionWithoutEngine, hugeTransaction, throughput, lag, idleSlot, pipeline];
const unknown = only?.split(',').filter((name) => !all.some((s) => s.name === name)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}: use ${all.map((s) => s.name).join(', ')}`);
  process.exit(2);
}
const scenarios = all.filter((s) => !only || only.split(',').includes(s.name));
// --repeat=N: each scenario N times, and for throughput the median and range of its ratios, since
// single runs of them move ±20% on 2 shared cores (bench/HISTORY.md, sixth round).
const REPEAT = sizeArg('--repeat', 1);
if (!Number.isInteger(REPEAT) || REPEAT < 1) {
  console.error('--repeat takes a whole number of runs, 1 or more (say --repeat=5)');
  process.exit(2);
}
const RATIO_FIELDS = [
  'ratio',
  'catchUpRatio',
  'ratioToShared',
  'catchUpRatioToShared',
  'coupledRatio',
  'catchUpRatioToCoupled',
  'e2eRowsPerSecond',
  'catchUpRowsPerSecond',
  'rawInsertRowsPerSecond',
  'rawDecodeRowsPerSecond',
  'sharedCeilingRowsPerSecond',
  'coupledCeilingRowsPerSecond',
] as const;

/** Median, lowest and highest of each field over the repeated runs of one scenario. */
function spread(runs: ReadonlyArray<Record<string, unknown>>, fields: readonly string[]) {
  const summary: Record<string, { median: number; min: number; max: number }> = {};
  for (const field of fields) {
    const values = runs.map((run) => Number(run[field]));
    summary[field] = { median: Number(median(values).toFixed(3)), min: Math.min(...values), max: Math.max(...values) };
  }
  return summary;
}

const server = await startPostgres();
const ch = await connectClickHouse({ chdbPath: ':memory:' });
const results: object[] = [];
try {
  for (const scenario of scenarios) {
    const runs: Array<Record<string, unknown>> = [];
    for (let run = 0; run < REPEAT; run++) {
      const figures = await scenario(server, ch).catch((error: unknown) => {
        console.error(error);
        throw error;
      });
      results.push(figures);
      runs.push(figures as Record<string, unknown>);
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    }
    if (REPEAT > 1 && scenario === throughput) {
      const summary = { scenario: 'throughput-spread', runs: REPEAT, ...spread(runs, RATIO_FIELDS), loadAverage: loadAverage() };
      results.push(summary);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    }
  }
} finally {
  await ch.close();
  await server.stop();
}
// --save=LABEL keeps a partial or resized run too (say the cost-growth runs), under its label.
const label = process.argv.find((arg) => arg.startsWith('--save='));
if (only && !label) process.exit(0); // a partial run is not kept: its figures are not comparable
keepResult(`${large ? 'large' : 'small'}${SHAPE === 'thin' ? '' : `_${SHAPE}`}${MIX === 'inserts' ? '' : `_${MIX}`}`, {
  scale: large ? 'large' : 'small',
  rowShape: SHAPE,
  mix: MIX,
  postgres: server.kind,
  clickhouse: 'chdb',
  results,
});
