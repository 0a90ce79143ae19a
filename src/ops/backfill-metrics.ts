/**
 * Prometheus figures of a running backfill (`runs-cdc backfill --metrics-port`): rows copied,
 * rows expected and rows/s per table, updated with the progress it reports anyway.
 */
import client from 'prom-client';
import type { ProgressReporter, TableProgress } from '../backfill/progress.ts';

export class BackfillMetrics implements ProgressReporter {
  readonly registry = new client.Registry();
  private readonly copied = new client.Gauge({
    name: 'runs_cdc_backfill_rows_copied',
    help: 'Rows the backfill job has copied, per source table (resumed runs included)',
    labelNames: ['table'],
    registers: [this.registry],
  });
  private readonly estimated = new client.Gauge({
    name: 'runs_cdc_backfill_rows_estimated',
    help: 'Rows the backfill expects per source table (planner estimate, or exact with --exact-count)',
    labelNames: ['table'],
    registers: [this.registry],
  });
  private readonly rate = new client.Gauge({
    name: 'runs_cdc_backfill_rows_per_second',
    help: 'Rows per second of this backfill run, per source table',
    labelNames: ['table'],
    registers: [this.registry],
  });

  /** Reports to `inner` as well (bars or log lines). */
  constructor(private readonly inner: ProgressReporter) {}

  private record(figures: TableProgress): void {
    this.copied.set({ table: figures.table }, figures.copied);
    this.estimated.set({ table: figures.table }, figures.estimated);
    this.rate.set({ table: figures.table }, figures.rowsPerSecond);
  }

  start(tables: readonly TableProgress[]): void {
    for (const figures of tables) this.record(figures);
    this.inner.start(tables);
  }

  update(figures: TableProgress): void {
    this.record(figures);
    this.inner.update(figures);
  }

  checkpoint(figures: TableProgress): void {
    this.record(figures);
    this.inner.checkpoint(figures);
  }

  stop(): void {
    this.inner.stop();
  }
}
