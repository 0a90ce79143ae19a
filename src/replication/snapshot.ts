/**
 * What a running replication shows the outside (metrics, progress logs, the demo): plain figures,
 * read at once, so readers depend on this shape and not on the daemon's parts.
 */
import type { Lsn } from '../lsn.ts';
import type { SinkStats } from '../sink/runs-sink.ts';

export interface DaemonStats {
  transactions: number;
  changes: number;
  coercions: number;
  ignoredChanges: number;
  unresolvedDeletes: number;
  lookups: number;
  truncates: number;
  acks: number;
  /** Times the replication connection was lost and opened again. */
  reconnects: number;
  /** Heartbeat messages written into the WAL (--heartbeat-interval-ms). */
  heartbeats: number;
  /** Changes received per `table/operation` (insert, update, delete, truncate). */
  received: Record<string, number>;
  /** Tables whose changes come without REPLICA IDENTITY FULL (set at start with
   * --allow-partial-identity, or switched mid-stream), each with its identity: values they lack
   * are looked up in ClickHouse. */
  degradedIdentity: Record<string, string>;
}

export function emptyDaemonStats(): DaemonStats {
  return {
    transactions: 0,
    changes: 0,
    coercions: 0,
    ignoredChanges: 0,
    unresolvedDeletes: 0,
    lookups: 0,
    truncates: 0,
    acks: 0,
    reconnects: 0,
    heartbeats: 0,
    received: {},
    degradedIdentity: {},
  };
}

export interface ReplicationSnapshot {
  /** Subscribed to the slot and running: what /readyz reports. */
  streaming: boolean;
  /** Repairing the gap after the slot was recreated (--recreate-slot): not ready until it ends. */
  repairingGap: boolean;
  /** The LSN confirmed to Postgres so far. */
  confirmedLsn: Lsn;
  /** Now - commit time of the oldest transaction received or announced (BEGIN) but not
   * confirmed; 0 when nothing is waiting. A huge transaction counts from its BEGIN on. */
  lagSeconds: number;
  /** The furthest LSN received or announced (a BEGIN's final LSN) minus the confirmed LSN. */
  lagBytes: number;
  stats: Readonly<DaemonStats>;
  /** Rows and estimated bytes buffered or in flight to the sink. */
  bufferedRows: number;
  bufferedBytes: number;
  /** The most rows ever buffered at once. */
  peakBufferedRows: number;
  /** The counters of every sink target, default first. */
  sinks: ReadonlyArray<Readonly<SinkStats>>;
}

/** Anything that can show a snapshot of a running replication. */
export interface SnapshotSource {
  snapshot(): ReplicationSnapshot;
}

/** Hooks for metrics; all optional. */
export interface DaemonObserver {
  flushed?(rows: number, seconds: number): void;
}
