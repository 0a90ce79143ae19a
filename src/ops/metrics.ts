/**
 * Prometheus metrics of the replication daemon (prom-client, a registry per daemon). Totals are
 * read from a snapshot of the replication (its counters, buffer and sinks) at scrape time; flush
 * duration and batch size are observed as flushes complete.
 */
import client from 'prom-client';
import type { Lsn } from '../lsn.ts';
import type { DaemonObserver, ReplicationSnapshot, SnapshotSource } from '../replication/snapshot.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';

export interface MetricsSources {
  /** What the metrics read: a snapshot taken at each scrape. */
  replication: SnapshotSource;
  /** The server's current WAL end, for lag in bytes; undefined when it cannot be read. */
  serverWalEnd(): Promise<Lsn | undefined>;
}

/** What one metric reads: the snapshot, and the server's WAL end when it needs it. */
interface Scrape {
  snapshot: ReplicationSnapshot;
  serverWalEnd(): Promise<Lsn | undefined>;
}

/** The sink counters of every ClickHouse target, added up. */
function sinkTotals({ snapshot }: Scrape): {
  rowsByTable: Record<string, number>;
  retriesByReason: Record<string, number>;
  deadLetters: number;
} {
  const totals = { rowsByTable: {} as Record<string, number>, retriesByReason: {} as Record<string, number>, deadLetters: 0 };
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  for (const stats of snapshot.sinks) {
    add(totals.rowsByTable, stats.rowsByTable);
    add(totals.retriesByReason, stats.retriesByReason);
    totals.deadLetters += stats.deadLetters;
  }
  return totals;
}

type Reading = number | Record<string, number> | undefined;

/** Label values of a `table/operation`-style key: as many parts as there are labels. */
function labelsOf(key: string, labelNames: readonly string[]): Record<string, string> {
  const parts = labelNames.length === 1 ? [key] : key.split('/');
  return Object.fromEntries(labelNames.map((name, i) => [name, parts[i] ?? '']));
}

export class DaemonMetrics {
  readonly registry = new client.Registry();
  private sources: MetricsSources | undefined;
  private readonly flushSeconds = new client.Histogram({
    name: 'runs_cdc_flush_duration_seconds',
    help: 'Time to write one flush (all its groups) into ClickHouse',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly batchRows = new client.Histogram({
    name: 'runs_cdc_batch_rows',
    help: 'Rows per flush',
    buckets: [1, 10, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000],
    registers: [this.registry],
  });

  /** Pass to the daemon's constructor. */
  readonly observer: DaemonObserver = {
    flushed: (rows, seconds) => {
      this.flushSeconds.observe(seconds);
      this.batchRows.observe(rows);
    },
  };

  constructor() {
    this.reading(
      'gauge',
      'runs_cdc_replication_lag_bytes',
      'Server WAL end (or, if further, what was received or announced) minus the LSN confirmed to the slot (what Postgres keeps for us)',
      [],
      async (s) => {
        const walEnd = await s.serverWalEnd();
        if (walEnd === undefined) return s.snapshot.lagBytes;
        const lag = walEnd - s.snapshot.confirmedLsn;
        return Math.max(s.snapshot.lagBytes, Number(lag > 0n ? lag : 0n));
      },
    );
    this.reading(
      'gauge',
      'runs_cdc_replication_lag_seconds',
      'Now minus the commit time of the oldest transaction received or announced (its BEGIN) but not confirmed; 0 when none is waiting',
      [],
      ({ snapshot }) => snapshot.lagSeconds,
    );
    this.reading(
      'gauge',
      'runs_cdc_degraded_identity',
      '1 for a source table replicated without REPLICA IDENTITY FULL (values it lacks are looked up in ClickHouse), else 0',
      ['table'],
      ({ snapshot }) => Object.fromEntries(SOURCE_TABLES.map((t) => [t, snapshot.stats.degradedIdentity[t] ? 1 : 0])),
    );
    this.reading(
      'gauge',
      'runs_cdc_slot_gap_repair_running',
      '1 while the gap after a recreated replication slot is being repaired (replicate --recreate-slot), else 0',
      [],
      ({ snapshot }) => (snapshot.repairingGap ? 1 : 0),
    );
    this.reading(
      'counter',
      'runs_cdc_changes_received_total',
      'Changes received from the slot, per source table and operation',
      ['table', 'operation'],
      (s) => s.snapshot.stats.received,
    );
    this.reading(
      'counter',
      'runs_cdc_transactions_received_total',
      'Transactions received from the slot (commits)',
      [],
      (s) => s.snapshot.stats.transactions,
    );
    this.reading(
      'counter',
      'runs_cdc_rows_written_total',
      'Rows written into ClickHouse, per source table and kind (live row or tombstone)',
      ['table', 'kind'],
      (s) => sinkTotals(s).rowsByTable,
    );
    this.reading(
      'counter',
      'runs_cdc_clickhouse_retries_total',
      'Retried ClickHouse operations, per reason',
      ['reason'],
      (s) => sinkTotals(s).retriesByReason,
    );
    this.reading('gauge', 'runs_cdc_buffered_rows', 'Rows buffered or in flight to ClickHouse', [], (s) => s.snapshot.bufferedRows);
    this.reading(
      'gauge',
      'runs_cdc_buffered_bytes',
      'Estimated bytes buffered or in flight to ClickHouse',
      [],
      (s) => s.snapshot.bufferedBytes,
    );
    this.reading(
      'counter',
      'runs_cdc_dead_letters_total',
      'Rows ClickHouse refused for their content, kept in dead_letters',
      [],
      (s) => sinkTotals(s).deadLetters,
    );
    this.reading(
      'counter',
      'runs_cdc_reconnects_total',
      'Times the replication connection was lost and opened again',
      [],
      (s) => s.snapshot.stats.reconnects,
    );
    this.reading(
      'counter',
      'runs_cdc_value_coercions_total',
      'Values stored as NULL or empty because ClickHouse could not hold them (each is logged)',
      [],
      (s) => s.snapshot.stats.coercions,
    );
  }

  /**
   * A metric read at each scrape from figures the replication's snapshot holds anyway (totals only
   * grow, so a counter is reset and set to them): one value, or one series per key.
   */
  private reading(
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: string[],
    read: (scrape: Scrape) => Reading | Promise<Reading>,
  ): void {
    const metrics = this;
    const Metric = kind === 'counter' ? client.Counter : client.Gauge;
    new Metric({
      name,
      help,
      labelNames,
      registers: [this.registry],
      async collect() {
        const sources = metrics.sources;
        const value = sources && (await read({ snapshot: sources.replication.snapshot(), serverWalEnd: sources.serverWalEnd }));
        if (value === undefined) return;
        const metric = this as unknown as client.Gauge<string>;
        metric.reset();
        const put = (labels: Record<string, string>, n: number) =>
          kind === 'counter' ? (this as client.Counter<string>).inc(labels, n) : metric.set(labels, n);
        if (typeof value === 'number') put({}, value);
        else for (const [key, n] of Object.entries(value)) put(labelsOf(key, labelNames), n);
      },
    });
  }

  attach(sources: MetricsSources): void {
    this.sources = sources;
  }
}
