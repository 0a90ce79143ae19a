/**
 * The replication core (TransactionApplier -> DurableBuffer -> RunsSink) wired as the daemon wires
 * it, against a MemorySink: no Postgres, no ClickHouse. Tests feed stream items and read what was
 * confirmed and what the sink holds.
 */
import { vi } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import type { Lsn } from '../../src/lsn.ts';
import { TransactionApplier } from '../../src/replication/applier.ts';
import { DurableBuffer } from '../../src/replication/durable-buffer.ts';
import type { RowBufferLimits } from '../../src/replication/row-buffer.ts';
import { emptyDaemonStats } from '../../src/replication/snapshot.ts';
import { MemorySink } from '../../src/sink/memory-sink.ts';
import type { EncodedRow } from '../../src/sink/runs-sink.ts';
import { RunsTargets } from '../../src/sink/targets.ts';
import type { StreamItem } from '../../src/source/stream.ts';

export const CORE_LIMITS: RowBufferLimits = {
  batchRows: 1_000,
  batchBytes: 10_000_000,
  flushIntervalMs: 100,
  maxBufferedRows: 10_000,
  maxBufferedBytes: 100_000_000,
  flushGroups: 'sequential',
};

export interface CoreOptions {
  limits?: Partial<RowBufferLimits>;
  onTruncate?: 'delete' | 'ignore' | 'fail';
  sink?: MemorySink;
}

export function replicationCore({ limits = {}, onTruncate = 'delete', sink = new MemorySink() }: CoreOptions = {}) {
  /** Every LSN the buffer declared confirmable, in order: what the daemon would tell Postgres. */
  const confirmed: Lsn[] = [];
  const failures: Error[] = [];
  const source = { paused: false, pauses: 0, pause: vi.fn(), resume: vi.fn() };
  source.pause.mockImplementation(() => {
    source.paused = true;
    source.pauses += 1;
  });
  source.resume.mockImplementation(() => {
    source.paused = false;
  });
  const targets = new RunsTargets(sink);
  const stats = emptyDaemonStats();
  const buffer = new DurableBuffer<EncodedRow>({
    limits: { ...CORE_LIMITS, ...limits },
    write: (target, rows) => targets.table(target).writeEncoded(rows),
    onConfirmable: (lsn) => confirmed.push(lsn),
    onFailure: (error) => failures.push(error),
  });
  const applier = new TransactionApplier({
    buffer,
    targets,
    onTruncate,
    stats,
    log: silentLogger,
    source: () => source,
    onFailure: (error) => {
      failures.push(error);
      applier.halt();
    },
  });
  return {
    sink,
    buffer,
    applier,
    stats,
    confirmed,
    failures,
    source,
    /** Hand items to the applier as the stream would. */
    receive(items: readonly StreamItem[]): void {
      for (const item of items) applier.receive(item);
    },
    /** Let every handled item, timer and write due within `ms` run (fake timers). */
    async settle(ms = CORE_LIMITS.flushIntervalMs): Promise<void> {
      await vi.advanceTimersByTimeAsync(ms);
    },
    /** The newest confirmable LSN so far (0 before any). */
    get lastConfirmed(): Lsn {
      return confirmed.at(-1) ?? 0n;
    },
  };
}
