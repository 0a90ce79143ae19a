/**
 * Prometheus metrics of the replication daemon (prom-client, a registry per daemon). Totals are
 * read from the daemon's, buffer's and sink's own counters at scrape time; flush duration and
 * batch size are observed as flushes complete.
 */
import client from 'prom-client';
import type { Lsn } from '../lsn.ts';
import type { DaemonObserver, ReplicationDaemon } from '../replication/daemon.ts';

export interface MetricsSources {
  daemon: ReplicationDaemon;
  /** The server's current WAL end, for lag in bytes; undefined when it cannot be read. */
  serverWalEnd(): Promise<Lsn | undefined>;
}

/** The sink counters of every ClickHouse target, added up. */
function sinkTotals(sources: MetricsSources): {
  rowsByTable: Record<string, number>;
  retriesByReason: Record<string, number>;
  deadLetters: number;
} {
  const totals = { rowsByTable: {} as Record<string, number>, retriesByReason: {} as Record<string, number>, deadLetters: 0 };
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
  };
  for (const [, table] of sources.daemon.targets.all) {
    add(totals.rowsByTable, table.stats.rowsByTable);
    add(totals.retriesByReason, table.stats.retriesByReason);
    totals.deadLetters += table.stats.deadLetters;
  }
  return totals;
}

/** Set a counter to totals kept elsewhere (they only grow), one series per `a/b` key. */
function setTotals(counter: client.Counter<string>, totals: Record<string, number>, labels: [string, string]): void {
  counter.reset();
  for (const [key, value] of Object.entries(totals)) {
    const [a = '', b = ''] = key.split('/');
    counter.inc({ [labels[0]]: a, [labels[1]]: b }, value);
  }
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
    const sources = () => this.sources;
    new client.Gauge({
      name: 'runs_cdc_replication_lag_bytes',
      help: 'Server WAL end minus the LSN confirmed to the slot (what Postgres keeps for us)',
      registers: [this.registry],
      async collect() {
        const s = sources();
        const walEnd = await s?.serverWalEnd();
        if (!s || walEnd === undefined) return;
        const lag = walEnd - s.daemon.confirmedLsn;
        this.set(Number(lag > 0n ? lag : 0n));
      },
    });
    new client.Gauge({
      name: 'runs_cdc_replication_lag_seconds',
      help: 'Now minus the commit time of the last confirmed transaction; 0 when every received transaction is confirmed',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (!daemon) return;
        const last = daemon.lastConfirmedCommitMs;
        this.set(daemon.allConfirmed || last === undefined ? 0 : Math.max(0, (Date.now() - last) / 1000));
      },
    });
    new client.Counter({
      name: 'runs_cdc_changes_received_total',
      help: 'Changes received from the slot, per source table and operation',
      labelNames: ['table', 'operation'],
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (daemon) setTotals(this, daemon.stats.received, ['table', 'operation']);
      },
    });
    new client.Counter({
      name: 'runs_cdc_transactions_received_total',
      help: 'Transactions received from the slot (commits)',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (!daemon) return;
        this.reset();
        this.inc(daemon.stats.transactions);
      },
    });
    new client.Counter({
      name: 'runs_cdc_rows_written_total',
      help: 'Rows written into ClickHouse, per source table and kind (live row or tombstone)',
      labelNames: ['table', 'kind'],
      registers: [this.registry],
      collect() {
        const s = sources();
        if (s) setTotals(this, sinkTotals(s).rowsByTable, ['table', 'kind']);
      },
    });
    new client.Counter({
      name: 'runs_cdc_clickhouse_retries_total',
      help: 'Retried ClickHouse operations, per reason',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        const s = sources();
        if (!s) return;
        this.reset();
        for (const [reason, n] of Object.entries(sinkTotals(s).retriesByReason)) this.inc({ reason }, n);
      },
    });
    new client.Gauge({
      name: 'runs_cdc_buffered_rows',
      help: 'Rows buffered or in flight to ClickHouse',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (daemon) this.set(daemon.buffer.bufferedRows);
      },
    });
    new client.Gauge({
      name: 'runs_cdc_buffered_bytes',
      help: 'Estimated bytes buffered or in flight to ClickHouse',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (daemon) this.set(daemon.buffer.bufferedBytes);
      },
    });
    new client.Counter({
      name: 'runs_cdc_dead_letters_total',
      help: 'Rows ClickHouse refused for their content, kept in dead_letters',
      registers: [this.registry],
      collect() {
        const s = sources();
        if (!s) return;
        this.reset();
        this.inc(sinkTotals(s).deadLetters);
      },
    });
    new client.Counter({
      name: 'runs_cdc_reconnects_total',
      help: 'Times the replication connection was lost and opened again',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (!daemon) return;
        this.reset();
        this.inc(daemon.stats.reconnects);
      },
    });
    new client.Counter({
      name: 'runs_cdc_value_coercions_total',
      help: 'Values stored as NULL or empty because ClickHouse could not hold them (each is logged)',
      registers: [this.registry],
      collect() {
        const daemon = sources()?.daemon;
        if (!daemon) return;
        this.reset();
        this.inc(daemon.stats.coercions);
      },
    });
  }

  attach(sources: MetricsSources): void {
    this.sources = sources;
  }
}
