/**
 * Figures the alert rules need that the daemon itself does not count, read from Postgres and
 * ClickHouse at scrape time and registered beside the daemon's metrics: readiness as a number, the
 * slot's `wal_status` and the WAL it retains, each table's replica identity (degraded when not
 * FULL) and the backfill jobs of the last day by status. A figure that cannot be read is left out
 * of that scrape (Prometheus then sees the series absent, never a made-up value).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import client from 'prom-client';
import { readReplicaIdentities } from '../source/catalog.ts';

/** The values Postgres reports in pg_replication_slots.wal_status (PG 13+). */
export const WAL_STATUSES = ['reserved', 'extended', 'unreserved', 'lost'] as const;

/** How far back `runs_cdc_backfill_recent_jobs` looks: a failed job alerts for a day unless resumed. */
const RECENT_JOBS_HOURS = 24;

export interface HealthSources {
  pool: pg.Pool;
  slot: string;
  clickhouse: ClickHouseClient;
  clickhouseDatabase: string;
  /** Empty when ready (the /readyz check). */
  readinessProblems(): Promise<string[]>;
  /** --max-buffered-rows and --max-buffered-bytes: reading pauses above them. */
  bufferLimits: { rows: number; bytes: number };
}

export function registerHealthMetrics(registry: client.Registry, sources: HealthSources): void {
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge<string>) => Promise<void>) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await collect(this).catch(() => {});
      },
    });

  gauge('runs_cdc_buffer_limit_rows', 'Buffered rows above which reading pauses (--max-buffered-rows)', [], async (g) => {
    g.set(sources.bufferLimits.rows);
  });
  gauge('runs_cdc_buffer_limit_bytes', 'Buffered bytes above which reading pauses (--max-buffered-bytes)', [], async (g) => {
    g.set(sources.bufferLimits.bytes);
  });
  gauge('runs_cdc_ready', '1 when /readyz would answer 200 (streaming from the slot and ClickHouse answers), else 0', [], async (g) => {
    g.set((await sources.readinessProblems()).length === 0 ? 1 : 0);
  });
  gauge(
    'runs_cdc_slot_wal_status',
    "1 for the slot's current wal_status (reserved, extended, unreserved, lost); absent when the slot is missing",
    ['wal_status'],
    async (g) => {
      const { rows } = await sources.pool.query<{ wal_status: string | null }>(
        'SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1',
        [sources.slot],
      );
      const status = rows[0]?.wal_status;
      if (!status) return;
      for (const s of new Set([...WAL_STATUSES, status])) g.set({ wal_status: s }, s === status ? 1 : 0);
    },
  );
  gauge(
    'runs_cdc_slot_retained_wal_bytes',
    "WAL the server keeps for the slot: current WAL position minus the slot's restart_lsn",
    [],
    async (g) => {
      const { rows } = await sources.pool.query<{ bytes: string | null }>(
        'SELECT (pg_current_wal_lsn() - restart_lsn)::text AS bytes FROM pg_replication_slots WHERE slot_name = $1',
        [sources.slot],
      );
      const bytes = rows[0]?.bytes;
      if (bytes != null) g.set(Math.max(0, Number(bytes)));
    },
  );
  gauge(
    'runs_cdc_replica_identity_full',
    '1 when the source table has REPLICA IDENTITY FULL, 0 when replication runs degraded for it (--allow-partial-identity)',
    ['table'],
    async (g) => {
      const connection = await sources.pool.connect();
      try {
        for (const [table, identity] of await readReplicaIdentities(connection)) {
          if (identity !== null) g.set({ table }, identity === 'f' ? 1 : 0);
        }
      } finally {
        connection.release();
      }
    },
  );
  gauge(
    'runs_cdc_backfill_recent_jobs',
    `Backfill jobs updated in the last ${RECENT_JOBS_HOURS} h, by their latest status (a resumed job counts once)`,
    ['status'],
    async (g) => {
      const result = await sources.clickhouse.query({
        query: `SELECT status, count() AS jobs FROM ${sources.clickhouseDatabase}.backfill_jobs FINAL
                 WHERE updated_at > now64(3) - INTERVAL {hours:UInt32} HOUR GROUP BY status`,
        query_params: { hours: RECENT_JOBS_HOURS },
        format: 'JSONEachRow',
      });
      const counts = new Map((await result.json<{ status: string; jobs: string | number }>()).map((r) => [r.status, Number(r.jobs)]));
      for (const status of new Set(['RUNNING', 'SUCCESS', 'FAILURE', 'EMPTY', ...counts.keys()]))
        g.set({ status }, counts.get(status) ?? 0);
    },
  );
}
