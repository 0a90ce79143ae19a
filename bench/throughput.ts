/**
 * End-to-end throughput: N rows committed in Postgres in 1,000-row transactions, from the first
 * commit until the daemon has confirmed the last one (so every row is in ClickHouse). Embedded
 * Postgres + chDB, like the demo. Prints one JSON line. `--rows N` (default 100000).
 */
import { startEmbeddedStack } from '../src/demo/embedded-stack.ts';
import { silentLogger } from '../src/logger.ts';

const rowsArg = process.argv.indexOf('--rows');
const ROWS = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 100_000;
const TX_ROWS = 1_000;

const { server, sql, replication, close } = await startEmbeddedStack(silentLogger);
const { daemon } = replication;
try {
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
  await replication.caughtUp(sql);
  const seconds = (performance.now() - started) / 1000;
  await replication.stop();
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
  await close();
}
