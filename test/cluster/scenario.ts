/**
 * The cluster job of .github/workflows/clickhouse-servers.yml (compose: .github/clickhouse-cluster/): runs-cdc against 2 shards x 2
 * replicas + Keeper behind a round-robin load balancer, so a read may land on a replica that
 * has not fetched the last insert yet. Needs DATABASE_URL (Postgres, wal_level=logical),
 * CLICKHOUSE_URL (the balancer) and CLICKHOUSE_CLUSTER. Exits non-zero on the first failed step.
 *
 * migrate --cluster; replicate; runs written, updated; TRUNCATE "TaskRun" (tombstones paged
 * through FINAL reads of the replicas) with runs written after it; runs stats; verify equal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { completeRuns, insertRuns, makeRun } from '../support/fixtures.ts';

const cli = (args: string[]) => spawnSync('node', ['bin/runs-cdc.js', ...args], { stdio: 'inherit', env: process.env }).status;

function step(name: string, ok: boolean): void {
  process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${name}\n`);
  if (!ok) process.exit(1);
}

/** verify until ClickHouse equals Postgres (replication is asynchronous), at most two minutes. */
async function verifiedEqual(): Promise<boolean> {
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 2_000))) {
    if (cli(['verify']) === 0) return true;
  }
  return false;
}

const sql = new pg.Client({ connectionString: process.env.DATABASE_URL });
await sql.connect();
await sql.query(readFileSync('sql/001_runs_tables.sql', 'utf8'));
await sql.query(readFileSync('sql/002_publication.sql', 'utf8'));

step('migrate --cluster', cli(['migrate', '--cluster', String(process.env.CLICKHOUSE_CLUSTER)]) === 0);
const daemon = spawn('node', ['bin/runs-cdc.js', 'replicate'], { stdio: 'inherit', env: process.env });
await new Promise((r) => setTimeout(r, 5_000));

const runs = (table: 'TaskRun' | 'task_run_v2', from: number) =>
  Array.from({ length: 2_000 }, (_, i) => makeRun({ table, index: from + i, organizationId: `org_${i % 10}` }));
const legacy = runs('TaskRun', 0);
await insertRuns(sql, 'TaskRun', legacy);
await insertRuns(sql, 'task_run_v2', runs('task_run_v2', 0));
await completeRuns(
  sql,
  'TaskRun',
  legacy.slice(0, 500).map((r) => r.id),
  new Date(Date.UTC(2026, 10, 2)),
);
step('replicated runs equal Postgres (verify)', await verifiedEqual());

await sql.query('TRUNCATE "TaskRun"');
await insertRuns(sql, 'TaskRun', runs('TaskRun', 10_000));
step('after TRUNCATE and new runs, ClickHouse equals Postgres (verify)', await verifiedEqual());

step(
  'runs stats',
  cli(['runs', 'stats', '--org', 'org_1', '--project', 'proj_1', '--env', 'env_prod', '--from', '2026-10-01', '--to', '2026-12-01']) === 0,
);

daemon.kill('SIGTERM');
const exit = await new Promise<number | null>((resolve) => daemon.once('exit', resolve));
step('replicate stops cleanly on SIGTERM', exit === 0);
step('verify after the daemon stopped', cli(['verify']) === 0);
await sql.end();
