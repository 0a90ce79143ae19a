/**
 * A `RunsStore` that encodes every write exactly as `RunsTable` sends it (the TabSeparated insert
 * body, in the bytes the socket would take) and then drops it. For benchmarks that
 * measure the daemon's own cost per row with ClickHouse out of the process (bench/run.ts
 * `pipeline`): it is "durable" at once, holds nothing, and reads back nothing. Not for production.
 */
import type { ClickHouseRow } from '../transform/row.ts';
import { countWrite, type EncodedRow, emptySinkStats, encodeRow, insertBody, type RunsStore, type SinkStats } from './runs-sink.ts';

export class DiscardingSink implements RunsStore {
  readonly stats: SinkStats = emptySinkStats();
  /** UTF-8 bytes of every body built, so the work cannot be optimised away and the bench can report it. */
  bytesEncoded = 0;

  constructor(readonly qualifiedName = 'discard.task_runs_v2') {}

  write(rows: readonly ClickHouseRow[]): Promise<void> {
    return this.writeEncoded(rows.map(encodeRow));
  }

  async writeEncoded(rows: readonly EncodedRow[]): Promise<void> {
    if (rows.length === 0) return;
    for (const chunk of insertBody(rows)) this.bytesEncoded += chunk.length;
    countWrite(this.stats, rows);
  }

  async tombstoneSourceTable(): Promise<number> {
    return 0;
  }

  async schemaMismatches(): Promise<string[]> {
    return [];
  }

  async currentRows(): Promise<Map<string, ClickHouseRow>> {
    return new Map();
  }
}
