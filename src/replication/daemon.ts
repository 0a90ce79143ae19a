/**
 * The replication daemon's stream supervisor: preflight, standing by while another process holds
 * the slot, the replication connection and its reconnects with backoff, heartbeats, and one
 * lifecycle state. What arrives is handed to the TransactionApplier (applier.ts); rows go through
 * the DurableBuffer (durable-buffer.ts), which says which LSN is confirmable; the supervisor tells
 * Postgres that LSN. So Postgres is told an LSN only when the sink holds every change up to it.
 */
import { isRetryable, StreamError } from '../errors.ts';
import { CRASH, type Crashable } from '../failpoints.ts';
import type { Logger } from '../logger.ts';
import { formatLsn, type Lsn } from '../lsn.ts';
import type { EncodedRow, RunsStore } from '../sink/runs-sink.ts';
import { type Routing, RunsTargets } from '../sink/targets.ts';
import { TransactionApplier } from './applier.ts';
import { ReconnectBackoff } from './backoff.ts';
import { ConnectionLostError, ReplicationConnection, SlotInUseError } from './connection.ts';
import { DurableBuffer } from './durable-buffer.ts';
import { GapRepairRun } from './gap-repair-run.ts';
import { LagTracker } from './lag.ts';
import { type DaemonState, Lifecycle } from './lifecycle.ts';
import type { DaemonSettings } from './settings.ts';
import { checkSlotIdentity, recordSlot, type SlotGuard } from './slot-guard.ts';
import { type DaemonObserver, type DaemonStats, emptyDaemonStats, type ReplicationSnapshot, type SnapshotSource } from './snapshot.ts';
import { checkBeforeStreaming, sleepUnless, waitForFreeSlot, withSql } from './startup.ts';

export type { DaemonSettings } from './settings.ts';
export type { SlotGuard } from './slot-guard.ts';
export type { DaemonObserver, DaemonStats } from './snapshot.ts';

export class ReplicationDaemon implements SnapshotSource, Crashable {
  readonly stats: DaemonStats = emptyDaemonStats();
  readonly buffer: DurableBuffer<EncodedRow>;
  /** Where rows go: the default table, and others by organization (--routes). */
  readonly targets: RunsTargets;
  private readonly applier: TransactionApplier;
  private readonly lifecycle = new Lifecycle();
  /** What was received or announced (BEGIN) and is not confirmed yet: lag.ts. */
  private readonly lag = new LagTracker();
  /** The error that ends replication (a write, an item, a kill); undefined while none. */
  private failure: Error | undefined;
  private connection: ReplicationConnection | undefined;
  private started: (() => void) | undefined;
  /** Failed connection attempts since the stream was last healthy; sets the reconnect delay. */
  private readonly backoff: ReconnectBackoff;
  /** Resolves once preflight passed and Postgres started streaming. */
  readonly ready: Promise<void>;
  /** The repair of the gap after a slot recreation (slot-guard.ts). */
  private readonly gapRepair = new GapRepairRun();

  constructor(
    private readonly databaseUrl: string,
    private readonly settings: DaemonSettings,
    sink: RunsStore,
    private readonly log: Logger,
    observer: DaemonObserver = {},
    routing?: Routing,
    /** Checks that the slot is the one ClickHouse's rows came from (absent: not checked). */
    private readonly slotGuard?: SlotGuard,
  ) {
    this.targets = new RunsTargets(sink, routing);
    this.backoff = new ReconnectBackoff(settings.retryInitialMs, settings.retryMaxMs);
    this.ready = new Promise((resolve) => {
      this.started = resolve;
    });
    this.buffer = new DurableBuffer({
      limits: settings,
      write: (target, rows) => this.targets.table(target).writeEncoded(rows),
      onConfirmable: (lsn) => this.confirm(lsn),
      onFailure: (error) => this.die(error),
      onFlushed: (rows, seconds) => observer.flushed?.(rows, seconds),
    });
    this.applier = new TransactionApplier({
      buffer: this.buffer,
      targets: this.targets,
      onTruncate: settings.onTruncate,
      stats: this.stats,
      log,
      source: () => this.connection,
      onFailure: (error) => this.die(error),
    });
  }

  get state(): DaemonState {
    return this.lifecycle.state;
  }

  private get halting(): boolean {
    return this.lifecycle.halting;
  }

  /** The LSN confirmed to Postgres so far. */
  get confirmedLsn(): Lsn {
    return this.buffer.confirmedLsn;
  }

  /**
   * Resolves once the confirmed LSN reaches `target` (so the sink holds every change committed
   * before it); rejects if run() ends first, by a failure or a stop.
   */
  waitForConfirmed(target: Lsn): Promise<void> {
    return this.buffer.whenConfirmable(target);
  }

  /** Preflight, then stream until stop() (resolves) or a fatal error (rejects). */
  async run(): Promise<void> {
    let ended: Error = new StreamError('stopped');
    try {
      await this.preflightAndStream();
      ended = new StreamError(`stopped at ${formatLsn(this.confirmedLsn)}`);
      this.lifecycle.become('stopped');
    } catch (error) {
      ended = error as Error;
      this.lifecycle.become('failed');
      throw error;
    } finally {
      this.buffer.end(ended);
      this.gapRepair.cancel();
      await this.gapRepair.ended();
    }
  }

  private async preflightAndStream(): Promise<void> {
    this.lifecycle.enter('preflight');
    const guard = this.slotGuard;
    // The checks before streaming share one short-lived connection.
    const plan = await withSql(this.databaseUrl, async (sql) => {
      const identity = guard && (await checkSlotIdentity(sql, this.settings.slot, guard, this.log));
      const partialIdentity = await checkBeforeStreaming(sql, this.settings, this.targets, this.log);
      for (const table of partialIdentity) this.stats.degradedIdentity[table] = 'NOT FULL';
      if (guard && identity) await recordSlot(sql, this.settings.slot, identity, guard.ledger);
      return identity;
    });
    if (guard && plan?.repair) {
      // Beside the stream; a failure ends the daemon (a restart repeats it).
      this.gapRepair.start(guard, this.settings.slot, this.log, (error) => {
        if (!this.halting) this.die(error);
      });
    }
    let reconnecting = false;
    for (;;) {
      try {
        await this.waitForFreeSlot(reconnecting);
      } catch (error) {
        // While reconnecting, Postgres may still be restarting: keep trying, with backoff.
        if (!reconnecting || !isRetryable(error) || this.halting) throw error;
        const { attempt, delayMs } = this.backoff.failed(this.confirmedLsn);
        this.log.warn({ attempt, delayMs, err: (error as Error).message }, 'Postgres not reachable yet; retrying');
        if (await this.sleepUnlessHalting(delayMs)) return;
        continue;
      }
      if (this.halting) return;
      try {
        await this.streamUntilStopped();
        return;
      } catch (error) {
        if (this.halting) return;
        if (error instanceof SlotInUseError) {
          // Another process took the slot between our check and START_REPLICATION: stand by again.
          this.log.warn({ slot: this.settings.slot, err: error.message }, 'slot taken by another process; standing by');
          continue;
        }
        if (!(error instanceof ConnectionLostError) || this.failure) throw this.failure ?? error;
        const { attempt, delayMs } = this.backoff.failed(this.confirmedLsn);
        reconnecting = true;
        this.stats.reconnects += 1;
        this.log.warn(
          { attempt, delayMs, err: error.message, confirmedLsn: formatLsn(this.confirmedLsn) },
          'replication connection lost; flushing what was received, then reconnecting from the slot',
        );
        await this.recoverFromLostConnection();
        if (await this.sleepUnlessHalting(delayMs)) return;
      }
    }
  }

  /** A repair of the gap after a slot recreation is running: /readyz is not ready. */
  get repairingGap(): boolean {
    return this.gapRepair.active;
  }

  /**
   * After the connection dropped: forget what was received but not handled (Postgres sends it
   * again from the slot), and write what is buffered, so nothing is pending. Replayed changes carry
   * the same versions, so anything written twice is one row under FINAL.
   */
  private async recoverFromLostConnection(): Promise<void> {
    this.lifecycle.enter('reconnecting');
    this.connection?.forget();
    await this.applier.discardReceived();
    await this.buffer.flushAll();
    if (this.failure) throw this.failure;
  }

  /** A crash (failpoints.ts): the connection drops unflushed and unconfirmed, buffered rows are lost. */
  async [CRASH](): Promise<void> {
    this.lifecycle.become('killed');
    this.failure ??= new StreamError('killed');
    this.gapRepair.cancel();
    this.applier.halt();
    this.buffer[CRASH]();
    await this.connection?.close(this.failure);
  }

  /** Graceful stop: stop reading, flush what was received, confirm it, close the connection. */
  async stop(): Promise<void> {
    if (this.halting) return;
    this.lifecycle.become('stopping');
    this.gapRepair.cancel();
    this.connection?.pause();
    this.applier.halt(); // received but unhandled: never confirmed, so Postgres sends it again
    await this.applier.discardReceived();
    this.buffer.close();
    try {
      await this.buffer.flushAll();
    } catch {
      // The failure is already the daemon's fatal error; nothing more is confirmed.
    }
    this.connection?.sendStatus(this.confirmedLsn);
    // Let the status update reach the socket before the connection closes.
    await new Promise((resolve) => setImmediate(resolve));
    await this.connection?.close(new StreamError('stopped'));
  }

  /**
   * Load the slot's confirmed position, standing by while another process holds the slot. On a
   * reconnect the buffer's position is kept: it may be ahead of the slot by a status update the
   * lost connection did not deliver, and the next status update sends it.
   */
  private async waitForFreeSlot(reconnecting: boolean): Promise<void> {
    await waitForFreeSlot({
      databaseUrl: this.databaseUrl,
      slot: this.settings.slot,
      standbyRetryMs: this.settings.standbyRetryMs,
      log: this.log,
      halted: () => this.halting,
      onSlot: (confirmed) => {
        if (!reconnecting) this.buffer.startAt(confirmed);
      },
      onStandby: () => this.lifecycle.enter('standby'),
    });
  }

  private sleepUnlessHalting(ms: number): Promise<boolean> {
    return sleepUnless(() => this.halting, ms);
  }

  private async streamUntilStopped(): Promise<void> {
    this.connection = new ReplicationConnection({
      databaseUrl: this.databaseUrl,
      settings: this.settings,
      log: this.log,
      confirmedLsn: () => this.confirmedLsn,
      onStart: () => {
        this.lifecycle.enter('streaming');
        this.backoff.started(this.confirmedLsn);
        this.started?.();
      },
      onItem: (item) => {
        this.lag.received(item);
        this.applier.receive(item); // a halted applier (stop, failure, crash) drops it
      },
      onHeartbeat: () => {
        this.stats.heartbeats += 1;
      },
      halting: () => this.halting,
      failure: () => this.failure,
    });
    await this.connection.run();
  }

  private die(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.gapRepair.cancel();
    this.applier.halt();
    this.connection?.pause();
    this.log.error({ err: error.message, confirmedLsn: formatLsn(this.confirmedLsn) }, 'replication stopped');
    this.connection?.abort(error);
  }

  /** Subscribed to the slot and not ended: what /readyz reports. */
  get streaming(): boolean {
    return this.lifecycle.state === 'streaming';
  }

  /** Replication lag: now - commit time of the oldest transaction received or announced (its
   * BEGIN) but not confirmed, and the bytes received or announced past the confirmed LSN; 0 when
   * nothing is waiting (lag.ts). */
  get currentLag(): { seconds: number; bytes: number } {
    return this.lag.lag(this.confirmedLsn);
  }

  snapshot(): ReplicationSnapshot {
    const lag = this.currentLag;
    return {
      streaming: this.streaming,
      repairingGap: this.repairingGap,
      confirmedLsn: this.confirmedLsn,
      lagSeconds: lag.seconds,
      lagBytes: lag.bytes,
      stats: this.stats,
      bufferedRows: this.buffer.bufferedRows,
      bufferedBytes: this.buffer.bufferedBytes,
      peakBufferedRows: this.buffer.stats.highWaterRows,
      sinks: this.targets.all.map(([, table]) => table.stats),
    };
  }

  private confirm(lsn: Lsn): void {
    this.stats.acks += 1;
    this.lag.confirmed(lsn);
    this.connection?.sendStatus(lsn);
  }
}
