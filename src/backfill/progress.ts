/**
 * Backfill progress: a bar per table on a terminal (rows, rows/s, ETA), one JSON log line per
 * checkpoint otherwise. The job computes the figures; a reporter only shows them.
 */
import cliProgress from 'cli-progress';
import type { Logger } from '../logger.ts';

export interface TableProgress {
  table: string;
  /** Rows of this table copied by the job so far, resumed runs included. */
  copied: number;
  /** Rows the table's ranges are expected to hold (planner estimate, or exact with --exact-count). */
  estimated: number;
  /** Rows per second of this run. */
  rowsPerSecond: number;
  /** Seconds left at the current rate, if it can be told. */
  etaSeconds: number | null;
}

export interface ProgressReporter {
  start(tables: readonly TableProgress[]): void;
  /** After every page. */
  update(figures: TableProgress): void;
  /** After every checkpoint. */
  checkpoint(figures: TableProgress): void;
  stop(): void;
}

/** Bars when stderr is a terminal, log lines otherwise. */
export function progressReporter(log: Logger, tty: boolean = process.stderr.isTTY === true): ProgressReporter {
  return tty ? new BarsReporter() : new LogReporter(log);
}

class LogReporter implements ProgressReporter {
  constructor(private readonly log: Logger) {}
  start(): void {}
  update(): void {}
  checkpoint(figures: TableProgress): void {
    this.log.info(figures, 'backfill progress');
  }
  stop(): void {}
}

function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

class BarsReporter implements ProgressReporter {
  private readonly bars = new cliProgress.MultiBar(
    {
      format: '{table} [{bar}] {value}/{total} rows | {rate} rows/s | ETA {etaText}',
      hideCursor: true,
      stopOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  private readonly byTable = new Map<string, cliProgress.SingleBar>();

  start(tables: readonly TableProgress[]): void {
    const width = Math.max(...tables.map((t) => t.table.length));
    for (const t of tables) {
      this.byTable.set(
        t.table,
        this.bars.create(Math.max(t.estimated, t.copied), t.copied, { table: t.table.padEnd(width), rate: 0, etaText: '?' }),
      );
    }
  }

  update(figures: TableProgress): void {
    const bar = this.byTable.get(figures.table);
    if (!bar) return;
    if (figures.copied > bar.getTotal()) bar.setTotal(figures.copied);
    bar.update(figures.copied, { rate: Math.round(figures.rowsPerSecond), etaText: formatEta(figures.etaSeconds) });
  }

  checkpoint(): void {}

  stop(): void {
    this.bars.stop();
  }
}

export const silentProgress: ProgressReporter = { start() {}, update() {}, checkpoint() {}, stop() {} };
