/**
 * The replication daemon's stream supervisor: preflight, standing by while another process holds
 * the slot, the replication connection and its reconnects with backoff, heartbeats, and one
 * lifecycle state. What arrives is handed to the TransactionApplier (applier.ts); rows go through
 * the DurableBuffer (durable-buffer.ts), which says which LSN is confirmable; the supervisor tells
 * Postgres that LSN. So Postgres is told an LSN only when the sink holds every change up to it.
 */
import pg from 'pg';
import type { Config } from '../config.ts';
import { RunsCdcError, StreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { formatLsn, type Lsn, parseLsn } from '../lsn.ts';
import type { EncodedRow, RunsStore } from '../sink/runs-sink.ts';
import { type Routing, RunsTargets } from '../sink/targets.ts';
import { assertUsableSlot, preflightPostgres, readSlot } from '../source/preflight.ts';
import { ReplicationStream } from '../source/stream.ts';
import { TransactionApplier } from './applier.ts';
import { DurableBuffer } from './durable-buffer.ts';
import { startHeartbeat } from './heartbeat.ts';
import { type DaemonObserver, type DaemonStats, emptyDaemonStats, type ReplicationSnapshot, type SnapshotSource } from './snapshot.ts';

export type { DaemonObserver, DaemonStats } from './snapshot.ts';

/** SQLSTATE of "replication slot ... is active for PID ...". */
const OBJECT_IN_USE = '55006';

class SlotInUseError extends StreamError {}

/** The replication connection dropped (walsender terminated, server restarted, network). */
class ConnectionLostError extends StreamError {}

/**
 * Where the daemon is in its life. `stopping` and `killed` are halting: nothing more is read or
 * confirmed; `stopped` and `failed` are final (run() resolved or rejected).
 */
export type DaemonState = 'created' | 'preflight' | 'standby' | 'streaming' | 'reconnecting' | 'stopping' | 'killed' | 'stopped' | 'failed';

export type DaemonSettings = Pick<
  Config,
  | 'slot'
  | 'publication'
  | 'batchRows'
  | 'batchBytes'
  | 'flushIntervalMs'
  | 'maxBufferedRows'
  | 'maxBufferedBytes'
  | 'flushGroups'
  | 'fixReplicaIdentity'
  | 'allowPartialIdentity'
  | 'onTruncate'
  | 'standbyRetryMs'
  | 'statusIntervalMs'
  | 'retryInitialMs'
  | 'retryMaxMs'
  | 'heartbeatIntervalMs'
>;

export class ReplicationDaemon implements SnapshotSource {
  readonly stats: DaemonStats = emptyDaemonStats();
  readonly buffer: DurableBuffer<EncodedRow>;
  /** Where rows go: the default table, and others by organization (--routes). */
  readonly targets: RunsTargets;
  private readonly applier: TransactionApplier;
  private state: DaemonState = 'created';
  /** The error that ends replication (a write, an item, a kill); undefined while none. */
  private failure: Error | undefined;
  private stream: ReplicationStream | undefined;
  private failStream: ((error: Error) => void) | undefined;
  private started: (() => void) | undefined;
  /** Failed connection attempts since the stream last started; sets the reconnect backoff. */
  private reconnectAttempt = 0;
  /** Resolves once preflight passed and Postgres started streaming. */
  readonly ready: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    private readonly settings: DaemonSettings,
    sink: RunsStore,
    private readonly log: Logger,
    observer: DaemonObserver = {},
    routing?: Routing,
  ) {
    this.targets = new RunsTargets(sink, routing);
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
      source: () => this.stream,
      onFailure: (error) => this.die(error),
    });
  }

  get lifecycle(): DaemonState {
    return this.state;
  }

  private get halting(): boolean {
    return this.state === 'stopping' || this.state === 'killed';
  }

  /** Move to `next` unless halting or ended: those states are left only by run() ending. */
  private enter(next: DaemonState): void {
    if (!this.halting && this.state !== 'stopped' && this.state !== 'failed') this.state = next;
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
      this.state = 'stopped';
    } catch (error) {
      ended = error as Error;
      this.state = 'failed';
      throw error;
    } finally {
      this.buffer.end(ended);
    }
  }

  private async preflightAndStream(): Promise<void> {
    this.enter('preflight');
    await this.withSql(async (sql) => {
      await preflightPostgres(sql, this.settings, this.log);
      for (const [, table] of this.targets.all) {
        const mismatches = await table.schemaMismatches();
        if (mismatches.length > 0) {
          throw new StreamError(
            `ClickHouse table ${table.qualifiedName} does not match runs-cdc's column mapping (${mismatches.slice(0, 3).join('; ')}): run runs-cdc migrate`,
          );
        }
      }
    });
    let reconnecting = false;
    for (;;) {
      try {
        await this.withSql((sql) => this.waitForFreeSlot(sql, reconnecting));
      } catch (error) {
        // While reconnecting, Postgres may still be restarting: keep trying, with backoff.
        if (!reconnecting || error instanceof RunsCdcError || this.halting) throw error;
        this.reconnectAttempt += 1;
        this.log.warn({ attempt: this.reconnectAttempt, err: (error as Error).message }, 'Postgres not reachable yet; retrying');
        if (await this.sleepUnlessHalting(this.backoffMs())) return;
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
        this.reconnectAttempt += 1;
        reconnecting = true;
        this.stats.reconnects += 1;
        this.log.warn(
          { attempt: this.reconnectAttempt, err: error.message, confirmedLsn: formatLsn(this.confirmedLsn) },
          'replication connection lost; flushing what was received, then reconnecting from the slot',
        );
        await this.recoverFromLostConnection();
        if (await this.sleepUnlessHalting(this.backoffMs())) return;
      }
    }
  }

  private backoffMs(): number {
    return Math.min(this.settings.retryMaxMs, this.settings.retryInitialMs * 2 ** Math.max(0, this.reconnectAttempt - 1));
  }

  /**
   * After the connection dropped: forget what was received but not handled (Postgres sends it
   * again from the slot), and write what is buffered, so nothing is pending. Replayed changes carry
   * the same versions, so anything written twice is one row under FINAL.
   */
  private async recoverFromLostConnection(): Promise<void> {
    this.enter('reconnecting');
    this.stream = undefined;
    await this.applier.discardReceived();
    await this.buffer.flushAll();
    if (this.failure) throw this.failure;
  }

  /**
   * What a SIGKILL leaves behind, for chaos tests in one process: the connection drops with no flush and no status update; buffered
   * rows are discarded (a flush already in flight may still land). Nothing is confirmed any more.
   */
  async kill(): Promise<void> {
    this.state = 'killed';
    this.failure ??= new StreamError('killed');
    this.applier.halt();
    this.buffer.discard();
    const stream = this.stream;
    this.stream = undefined;
    await stream?.stop();
    this.failStream?.(this.failure);
  }

  /** Graceful stop: stop reading, flush what was received, confirm it, close the connection. */
  async stop(): Promise<void> {
    if (this.halting) return;
    this.state = 'stopping';
    this.stream?.pause();
    this.applier.halt(); // received but unhandled: never confirmed, so Postgres sends it again
    await this.applier.discardReceived();
    this.buffer.close();
    try {
      await this.buffer.flushAll();
    } catch {
      // The failure is already the daemon's fatal error; nothing more is confirmed.
    }
    this.stream?.sendStatus(this.confirmedLsn);
    // Let the status update reach the socket before the connection closes.
    await new Promise((resolve) => setImmediate(resolve));
    await this.stream?.stop();
    this.failStream?.(new StreamError('stopped'));
  }

  /** A short-lived ordinary connection for startup checks (the stream has its own). */
  private async withSql<T>(use: (sql: pg.Client) => Promise<T>): Promise<T> {
    const sql = new pg.Client({ connectionString: this.databaseUrl, application_name: 'runs-cdc startup' });
    await sql.connect();
    try {
      return await use(sql);
    } finally {
      await sql.end();
    }
  }

  /**
   * Load the slot's confirmed position, standing by while another process holds the slot. On a
   * reconnect the buffer's position is kept: it may be ahead of the slot by a status update the
   * lost connection did not deliver, and the next status update sends it.
   */
  private async waitForFreeSlot(sql: pg.Client, reconnecting: boolean): Promise<void> {
    for (;;) {
      const slot = await readSlot(sql, this.settings.slot);
      if (!slot) throw new StreamError(`replication slot ${this.settings.slot} disappeared`);
      // On a reconnect too: the slot may have been invalidated while the connection was down.
      await assertUsableSlot(sql, slot, this.settings.slot);
      if (!reconnecting) this.buffer.startAt(slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : 0n);
      if (!slot.active) return;
      this.enter('standby');
      this.log.warn(
        { slot: this.settings.slot, pid: slot.activePid },
        `slot ${this.settings.slot} is in use by another process (pid ${slot.activePid}); standing by, retrying every ${this.settings.standbyRetryMs} ms`,
      );
      if (await this.sleepUnlessHalting(this.settings.standbyRetryMs)) return;
    }
  }

  private async sleepUnlessHalting(ms: number): Promise<boolean> {
    const step = Math.min(ms, 100);
    for (let waited = 0; waited < ms && !this.halting; waited += step) await new Promise((r) => setTimeout(r, step));
    return this.halting;
  }

  private async streamUntilStopped(): Promise<void> {
    const stream = new ReplicationStream(
      {
        connectionString: this.databaseUrl,
        slot: this.settings.slot,
        publication: this.settings.publication,
        confirmedLsn: () => this.confirmedLsn,
        statusIntervalMs: this.settings.statusIntervalMs,
        onStart: () => {
          this.enter('streaming');
          this.reconnectAttempt = 0;
          this.started?.();
        },
      },
      (item) => {
        if (!this.halting && !this.failure) this.applier.receive(item);
      },
    );
    this.stream = stream;
    const failed = new Promise<never>((_, reject) => {
      this.failStream = reject;
    });
    this.log.info(
      { slot: this.settings.slot, publication: this.settings.publication, from: formatLsn(this.confirmedLsn) },
      'streaming changes',
    );
    const streaming = stream.run();
    const heartbeat = startHeartbeat(this.databaseUrl, this.settings.heartbeatIntervalMs, this.log, () => {
      this.stats.heartbeats += 1;
    });
    try {
      await Promise.race([streaming, failed]);
    } catch (error) {
      if (this.failure) throw this.failure;
      if (this.halting) return;
      if ((error as { code?: string }).code === OBJECT_IN_USE) throw new SlotInUseError((error as Error).message);
      throw new ConnectionLostError(`replication connection failed: ${(error as Error).message}`);
    } finally {
      await heartbeat.stop();
    }
    if (this.failure) throw this.failure;
    // The stream ended without being asked to: the server closed the connection.
    if (!this.halting) throw new ConnectionLostError('the replication connection was closed by the server');
  }

  private die(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.applier.halt();
    this.stream?.pause();
    this.log.error({ err: error.message, confirmedLsn: formatLsn(this.confirmedLsn) }, 'replication stopped');
    void this.stream?.stop();
    this.failStream?.(error);
  }

  /** Subscribed to the slot and not ended: what /readyz reports. */
  get streaming(): boolean {
    return this.state === 'streaming';
  }

  /** Whether every received transaction is confirmed (nothing is waiting for the sink). */
  get allConfirmed(): boolean {
    return this.buffer.pendingCommits === 0;
  }

  /** Replication lag in seconds: now - commit time of the newest confirmed transaction, 0 when
   * nothing received is waiting. */
  get lagSeconds(): number {
    const last = this.buffer.confirmedCommitMs;
    return this.allConfirmed || last === undefined ? 0 : Math.max(0, (Date.now() - last) / 1000);
  }

  snapshot(): ReplicationSnapshot {
    return {
      streaming: this.streaming,
      confirmedLsn: this.confirmedLsn,
      lagSeconds: this.lagSeconds,
      stats: this.stats,
      bufferedRows: this.buffer.bufferedRows,
      bufferedBytes: this.buffer.bufferedBytes,
      peakBufferedRows: this.buffer.stats.highWaterRows,
      sinks: this.targets.all.map(([, table]) => table.stats),
    };
  }

  private confirm(lsn: Lsn): void {
    this.stats.acks += 1;
    this.stream?.sendStatus(lsn);
  }
}
