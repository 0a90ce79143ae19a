/**
 * Backfill throughput against the raw read it is bounded by: N runs (default 1,000,000, half per
 * table) generated in a private Postgres, copied into chDB at default settings, compared with
 * `COPY (SELECT ... ORDER BY "createdAt", id) TO STDOUT` of the same rows from the same server and
 * with the same rows inserted again through the same sink (ratioToCeiling: against the lower one).
 * Then verify over the same rows, comparing every mapped column and then only the key columns.
 * Prints one JSON line. `--rows N`, `--concurrency N`, `--chunk-rows N`, `--checkpoint-every N`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { backfillContextFor, backfillRequest, runBackfill } from '../src/backfill/job.ts';
import { SELECT_LIST } from '../src/backfill/source.ts';
import { BACKFILL_PROFILES, type Config, loadConfig } from '../src/config.ts';
import { startPostgres } from '../src/embedded/postgres.ts';
import { silentLogger } from '../src/logger.ts';
import { SOURCE_TABLES, TARGET_COLUMNS } from '../src/schema/columns.ts';
import { connectClickHouse } from '../src/sink/clickhouse.ts';
import { migrate } from '../src/sink/migrations.ts';
import { RunsTable } from '../src/sink/runs-table.ts';
import { quoteIdent } from '../src/source/catalog.ts';
import { createRunsTables } from '../src/source/schema.ts';
import { Verifier } from '../src/verify/verify.ts';
import { keepResult, loadAverage, numberArg, ratioOf } from './args.ts';

const ROWS = numberArg('--rows', 1_000_000);
const tuning = {
  concurrency: numberArg('--concurrency', BACKFILL_PROFILES.default.concurrency),
  chunkRows: numberArg('--chunk-rows', BACKFILL_PROFILES.default.chunkRows),
  checkpointEvery: numberArg('--checkpoint-every', BACKFILL_PROFILES.default.checkpointEvery),
};

/** Runs shaped like the platform's: most columns set, a ~300-byte payload, JSON context, tags. */
async function generate(sql: pg.Client, table: string, rows: number): Promise<void> {
  for (let from = 1; from <= rows; from += 100_000) {
    await sql.query(
      `INSERT INTO ${quoteIdent(table)} (id, number, "friendlyId", status, "taskIdentifier", "isTest", payload, context, "traceId",
         "spanId", "runtimeEnvironmentId", "environmentType", "projectId", "organizationId", queue, region, "createdAt", "updatedAt",
         "runTags", "taskVersion", "sdkVersion", "startedAt", "completedAt", "machinePreset", "usageDurationMs", "costInCents",
         output, "idempotencyKey", "queuedAt")
       SELECT md5($3 || g), g, 'run_' || g, (enum_range(NULL::"TaskRunStatus"))[1 + g % 17], 'task-' || (g % 40), g % 10 = 0,
         '{"n":' || g || ',"to":"user' || g || '@example.com","body":"' || repeat('x', 240) || '"}',
         jsonb_build_object('attempt', 1 + g % 3, 'machine', 'small-1x'), md5(g::text), left(md5(g::text), 16),
         'env_' || (g % 30), 'PRODUCTION', 'proj_' || (g % 10), 'org_' || (g % 4), 'task/q' || (g % 40), 'eu-central-1',
         timestamp '2026-01-01' + g * interval '2 second', timestamp '2026-01-01' + g * interval '2 second',
         ARRAY['user:' || (g % 1000), 'tier:' || (g % 3)], '20260101.' || (g % 9), '4.0.0',
         timestamp '2026-01-01' + g * interval '2 second' + interval '1 second',
         timestamp '2026-01-01' + g * interval '2 second' + interval '3 second', 'small-1x', 1500 + g % 1000, (g % 100) / 10.0,
         '{"ok":true}', 'key-' || g, timestamp '2026-01-01' + g * interval '2 second'
       FROM generate_series($1::int, $2::int) g`,
      [from, Math.min(from + 99_999, rows), table],
    );
  }
}

/**
 * The raw insert ceiling: the rows the backfill wrote, read back from ClickHouse as TabSeparated
 * lines a page at a time (untimed), inserted into another database by the same sink in pages of
 * the backfill's size; only the inserts are timed.
 */
async function rawInsert(
  ch: ClickHouseClient,
  config: Config,
  pageRows: number,
): Promise<{ seconds: number; rows: number; cores: number }> {
  await migrate(ch, 'runs_cdc_raw');
  const sink = RunsTable.fromConfig(ch, { ...config, clickhouseDatabase: 'runs_cdc_raw' }, silentLogger);
  const at = (name: string) => TARGET_COLUMNS.findIndex((c) => c.name === name);
  const [runId, sourceTable, deleted] = [at('run_id'), at('source_table'), at('_is_deleted')];
  let seconds = 0;
  let rows = 0;
  let cpuMicros = 0;
  for (const table of SOURCE_TABLES) {
    for (let after = ''; ; ) {
      const text = await (
        await ch.query({
          query: `SELECT * FROM runs_cdc.task_runs_v2 WHERE source_table = {table:String} AND run_id > {after:String} ORDER BY run_id LIMIT {n:UInt32}`,
          query_params: { table, after, n: pageRows },
          format: 'TabSeparated',
        })
      ).text();
      const page = text
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line) => {
          const fields = line.split('\t');
          return {
            line: Buffer.from(line),
            runId: fields[runId] as string,
            sourceTable: fields[sourceTable] as string,
            deleted: fields[deleted] === '1',
          };
        });
      if (page.length === 0) break;
      after = page.at(-1)?.runId as string;
      const started = performance.now();
      const cpu = process.cpuUsage();
      await sink.writeEncoded(page);
      seconds += (performance.now() - started) / 1000;
      const { user, system } = process.cpuUsage(cpu);
      cpuMicros += user + system;
      rows += page.length;
    }
  }
  return { seconds, rows, cores: Number((cpuMicros / 1e6 / seconds).toFixed(2)) };
}

/** Bytes and seconds of COPY (SELECT every mapped column in keyset order) TO STDOUT. */
async function rawRead(url: string): Promise<{ seconds: number; bytes: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let bytes = 0;
  const started = performance.now();
  for (const table of SOURCE_TABLES) {
    const stream = client.query(copyTo(`COPY (SELECT ${SELECT_LIST} FROM ${quoteIdent(table)} ORDER BY "createdAt", id) TO STDOUT`));
    await pipeline(
      stream,
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          done();
        },
      }),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  await client.end();
  return { seconds, bytes };
}

const server = await startPostgres();
const chdbPath = mkdtempSync(join(tmpdir(), 'runs-cdc-bench-backfill-'));
const sql = new pg.Client({ connectionString: server.url });
try {
  await sql.connect();
  await createRunsTables(sql);
  for (const table of SOURCE_TABLES) await generate(sql, table, ROWS / SOURCE_TABLES.length);
  await sql.query('VACUUM ANALYZE');
  await sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
  await sql.query(`SELECT pg_create_logical_replication_slot('runs_cdc', 'pgoutput')`);

  // Twice, keeping the second: the first warms the page cache, as a long-lived primary would be.
  await rawRead(server.url);
  const raw = await rawRead(server.url);

  const ch = await connectClickHouse({ chdbPath });
  await migrate(ch, 'runs_cdc');
  const config = loadConfig(
    {
      databaseUrl: server.url,
      backfillChunkRows: tuning.chunkRows,
      backfillConcurrency: tuning.concurrency,
      backfillCheckpointEvery: tuning.checkpointEvery,
    },
    {},
  );
  const backfillCpu = process.cpuUsage();
  const result = await runBackfill(
    sql,
    backfillRequest(),
    backfillContextFor(config, ch, silentLogger, {
      runsTable: RunsTable.fromConfig(ch, config, silentLogger, { maxRetries: config.backfillRetries }),
    }),
  );
  const { user, system } = process.cpuUsage(backfillCpu);
  // Cores this process kept busy during the backfill (Node and the in-process engine; not Postgres).
  const backfillCores = Number(((user + system) / 1e6 / result.seconds).toFixed(2));
  if (result.status !== 'SUCCESS' || result.rowsCopied !== ROWS) throw new Error(`backfill ended ${result.status}: ${result.message}`);
  const [counted] = await (await ch.query({ query: 'SELECT count() AS n FROM runs_cdc.task_runs_v2', format: 'JSONEachRow' })).json<{
    n: string;
  }>();
  // verify over the same rows: aggregates computed in each database, nothing pulled into Node.
  // Every mapped column (the default), then the key set.
  const rssBeforeVerify = process.memoryUsage().rss;
  const timeVerify = async (columns: 'all' | 'key') => {
    const started = performance.now();
    const verified = await new Verifier(sql, ch, 'runs_cdc').run({
      tables: SOURCE_TABLES,
      windowSeconds: 86_400,
      leafRows: 2_000,
      columns,
    });
    if (!verified.equal) throw new Error(`verify found ${verified.differences.length} differences after the backfill`);
    return (performance.now() - started) / 1000;
  };
  const verifySeconds = await timeVerify('all');
  const verifyRssGrowthMiB = Math.round((process.memoryUsage().rss - rssBeforeVerify) / 2 ** 20);
  const verifyKeyColumnsSeconds = await timeVerify('key');
  const inserted = await rawInsert(ch, config, tuning.chunkRows);
  await ch.close();
  const backfillRowsPerSecond = ROWS / result.seconds;
  const rawRowsPerSecond = ROWS / raw.seconds;
  const rawInsertRowsPerSecond = inserted.rows / inserted.seconds;
  const ms = (v: number) => Math.round(v);
  const figures = {
    scenario: 'backfill',
    rows: ROWS,
    rowsInClickHouse: Number(counted?.n),
    chunkRows: tuning.chunkRows,
    concurrency: tuning.concurrency,
    checkpointEvery: tuning.checkpointEvery,
    backfillSeconds: Number(result.seconds.toFixed(2)),
    backfillRowsPerSecond: Math.round(backfillRowsPerSecond),
    backfillCores,
    rawCopySeconds: Number(raw.seconds.toFixed(2)),
    rawCopyRowsPerSecond: Math.round(rawRowsPerSecond),
    rawCopyMiB: Math.round(raw.bytes / 2 ** 20),
    ratio: ratioOf(backfillRowsPerSecond, rawRowsPerSecond),
    rawInsertRowsPerSecond: Math.round(rawInsertRowsPerSecond),
    rawInsertCores: inserted.cores,
    // Against the lower ceiling: reading (COPY) or inserting the same rows through the same sink.
    ratioToCeiling: ratioOf(backfillRowsPerSecond, Math.min(rawRowsPerSecond, rawInsertRowsPerSecond)),
    // Summed over workers (2 tables read at once): where the time goes.
    phasesMs: {
      read: ms(result.phases.readMs),
      transform: ms(result.phases.transformMs),
      insert: ms(result.phases.writeMs),
      checkpoint: ms(result.phases.checkpointMs),
    },
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    verifySeconds: Number(verifySeconds.toFixed(2)),
    verifyRowsPerSecond: Math.round(ROWS / verifySeconds),
    verifyRssGrowthMiB,
    verifyKeyColumnsSeconds: Number(verifyKeyColumnsSeconds.toFixed(2)),
    postgres: server.kind,
    clickhouse: 'chdb',
    loadAverage: loadAverage(),
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  keepResult('backfill', figures);
} finally {
  await sql.end().catch(() => {});
  await server.stop();
  rmSync(chdbPath, { recursive: true, force: true });
}
