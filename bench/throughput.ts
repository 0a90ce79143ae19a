/**
 * End-to-end throughput: N rows committed in Postgres in 1,000-row transactions, from the first
 * commit until the daemon has confirmed the last one (so every row is in ClickHouse). Embedded
 * Postgres + chDB, like the demo. Prints one JSON line. `--rows N` (default 100000).
 */
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { startPostgres } from '../src/embedded/postgres.ts';
import { silentLogger } from '../src/logger.ts';
import { parseLsn } from '../src/lsn.ts';
import { ReplicationDaemon } from '../src/replication/daemon.ts';
import { connectClickHouse } from '../src/sink/clickhouse.ts';
import { migrate } from '../src/sink/migrations.ts';
import { RunsTable } from '../src/sink/runs-table.ts';
import { createRunsTables } from '../src/source/schema.ts';

const rowsArg = process.argv.indexOf('--rows');
const ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 100_000;
const TX_ROWS = 1_000;

const server = await startPostgres();
const sql = new pg.Client({ connectionString: server.url });
await sql.connect();
const ch = await connectClickHouse({ chdbPath: ':memory:' });
try {
  await createRunsTables(sql);
  const config = loadConfig({ databaseUrl: server.url, chdbPath: ':memory:' }, {});
  await migrate(ch, config.clickhouseDatabase);
  const table = new RunsTable(ch, config.clickhouseDatabase, { initialDelayMs: 200, maxDelayMs: 5_000 }, silentLogger);
  const daemon = new ReplicationDaemon(server.url, config, table, silentLogger);
  const running = daemon.run();
  await daemon.ready;

  const started = performance.now();
  for (let offset = 0; offset < ROWS; offset += TX_ROWS) {
    await sql.query(
      `INSERT INTO task_run_v2 (id, "friendlyId", "taskIdentifier", payload, "traceId", "spanId", "runtimeEnvironmentId",
         "projectId", "organizationId", queue, status, "runTags", "createdAt", "startedAt", "costInCents")
       SELECT 'run_' || g, 'friendly_' || g, 'task-' || (g % 20), '{"n":' || g || '}', md5(g::text), left(md5(g::text), 16),
         'env_' || (g % 3), 'proj_' || (g % 5), 'org_1', 'task/q', 'COMPLETED_SUCCESSFULLY', ARRAY['user:' || (g % 100)],
         timestamp '2026-06-01' + g * interval '10 ms', timestamp '2026-06-01' + g * interval '10 ms', (g % 100) / 10.0
       FROM generate_series($1::int, $2::int) g`,
      [offset + 1, Math.min(offset + TX_ROWS, ROWS)],
    );
  }
  const committed = performance.now();
  const { rows } = await sql.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const target = parseLsn(rows[0]!.lsn);
  while (daemon.confirmedLsn < target) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  await daemon.stop();
  await running;
  const figures = {
    scenario: 'throughput',
    rows: ROWS,
    transactionRows: TX_ROWS,
    seconds: Number(seconds.toFixed(3)),
    writeSeconds: Number(((committed - started) / 1000).toFixed(3)),
    e2eRowsPerSecond: Math.round(ROWS / seconds),
    peakBufferedRows: daemon.buffer.stats.highWaterRows,
    flushes: daemon.buffer.stats.flushes,
    postgres: server.kind,
    clickhouse: 'chdb',
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
} finally {
  await sql.end();
  await ch.close();
  await server.stop();
}
