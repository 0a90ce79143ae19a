/**
 * The replication daemon: Postgres WAL (pgoutput) -> transform -> buffered ClickHouse inserts ->
 * acknowledgement. Items from the stream are handled one at a time, in wire order. Postgres is
 * told an LSN only when ClickHouse holds every change up to it (see AckTracker).
 */
import pg from 'pg';
import type { Pgoutput } from 'pg-logical-replication';
import type { Config } from '../config.ts';
import { RunsCdcError, StreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { formatLsn, type Lsn, parseLsn } from '../lsn.ts';
import { type EncodedRow, encodeRow, type RunsTable } from '../sink/runs-table.ts';
import { type Routing, RunsTargets } from '../sink/targets.ts';
import { connectPostgres, postgresConfig } from '../source/connection.ts';
import { assertUsableSlot, preflightPostgres, readSlot } from '../source/preflight.ts';
import { ReplicationStream, type StreamItem } from '../source/stream.ts';
import { isSourceTable, SOURCE_COLUMNS, type SourceTable } from '../transform/columns.ts';
import { type Change, type ClickHouseRow, type Tuple, tombstoneOf, transformChange } from '../transform/row.ts';
import { checkRelation } from '../transform/schema-drift.ts';
import { changeVersion } from '../transform/version.ts';
import { AckTracker } from './ack-tracker.ts';
import { RowBuffer } from './row-buffer.ts';

/** SQLSTATE of "replication slot ... is active for PID ...". */
const OBJECT_IN_USE = '55006';

class SlotInUseError extends StreamError {}

/** The replication connection dropped (walsender terminated, server restarted, network). */
class ConnectionLostError extends StreamError {}

/** Pause the socket when this many received items wait to be handled. */
const INBOX_HIGH_WATER = 2_000;
/** Warn about coerced values at most this many times per run (all are counted). */
const MAX_COERCION_WARNINGS = 20;

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
}

/** Hooks for metrics; all optional. */
export interface DaemonObserver {
  flushed?(rows: number, seconds: number): void;
}

export interface OpenTransaction {
  commitLsn: Lsn;
  ordinal: number;
}

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

export class ReplicationDaemon {
  readonly stats: DaemonStats = {
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
  };
  private subscribed = false;
  readonly buffer: RowBuffer<EncodedRow>;
  /** Where rows go: the default table, and others by organization (--routes). */
  readonly targets: RunsTargets;
  private acks = new AckTracker(0n);
  private stream: ReplicationStream | undefined;
  private inbox: StreamItem[] = [];
  private draining: Promise<void> | undefined;
  private open: OpenTransaction | undefined;
  private stopping = false;
  private fatal: Error | undefined;
  /** Why run() ended (a failure, or a stop); undefined while it runs. */
  private ended: Error | undefined;
  private failStream: ((error: Error) => void) | undefined;
  private readonly warnedRelations = new Set<string>();
  private confirmWaiters: Array<{ target: Lsn; resolve: () => void; reject: (error: Error) => void }> = [];
  private started: (() => void) | undefined;
  /** Failed connection attempts since the stream last started; sets the reconnect backoff. */
  private reconnectAttempt = 0;
  /** Resolves once preflight passed and Postgres started streaming. */
  readonly ready: Promise<void>;

  constructor(
    private readonly databaseUrl: string,
    private readonly settings: DaemonSettings,
    sink: RunsTable,
    private readonly log: Logger,
    observer: DaemonObserver = {},
    routing?: Routing,
  ) {
    this.targets = new RunsTargets(sink, routing);
    this.ready = new Promise((resolve) => {
      this.started = resolve;
    });
    this.buffer = new RowBuffer(
      settings,
      (target, rows) => this.targets.table(target).writeEncoded(rows),
      (seq) => {
        const lsn = this.acks.written(seq);
        if (lsn !== undefined) this.confirm(lsn);
      },
      (error) => this.die(error),
      (rows, seconds) => observer.flushed?.(rows, seconds),
    );
  }

  /** The LSN confirmed to Postgres so far. */
  get confirmedLsn(): Lsn {
    return this.acks.confirmedLsn;
  }

  /**
   * Resolves once the confirmed LSN reaches `target` (so ClickHouse holds every change committed
   * before it); rejects if run() ends first, by a failure or a stop.
   */
  waitForConfirmed(target: Lsn): Promise<void> {
    if (this.acks.confirmedLsn >= target) return Promise.resolve();
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.confirmWaiters.push({ target, resolve, reject }));
  }

  private rejectConfirmWaiters(error: Error): void {
    const waiters = this.confirmWaiters;
    this.confirmWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  /** Preflight, then stream until stop() (resolves) or a fatal error (rejects). */
  async run(): Promise<void> {
    try {
      await this.preflightAndStream();
      this.ended = new StreamError(`stopped at ${formatLsn(this.acks.confirmedLsn)}`);
    } catch (error) {
      this.ended = error as Error;
      throw error;
    } finally {
      this.rejectConfirmWaiters(this.ended as Error);
    }
  }

  private async preflightAndStream(): Promise<void> {
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
        if (!reconnecting || error instanceof RunsCdcError || this.stopping) throw error;
        this.reconnectAttempt += 1;
        this.log.warn({ attempt: this.reconnectAttempt, err: (error as Error).message }, 'Postgres not reachable yet; retrying');
        if (await this.sleepUnlessStopping(this.backoffMs())) return;
        continue;
      }
      if (this.stopping) return;
      try {
        await this.streamUntilStopped();
        return;
      } catch (error) {
        if (this.stopping) return;
        if (error instanceof SlotInUseError) {
          // Another process took the slot between our check and START_REPLICATION: stand by again.
          this.log.warn({ slot: this.settings.slot, err: error.message }, 'slot taken by another process; standing by');
          continue;
        }
        if (!(error instanceof ConnectionLostError) || this.fatal) throw this.fatal ?? error;
        this.reconnectAttempt += 1;
        reconnecting = true;
        this.stats.reconnects += 1;
        this.log.warn(
          { attempt: this.reconnectAttempt, err: error.message, confirmedLsn: formatLsn(this.acks.confirmedLsn) },
          'replication connection lost; flushing what was received, then reconnecting from the slot',
        );
        await this.recoverFromLostConnection();
        if (await this.sleepUnlessStopping(this.backoffMs())) return;
      }
    }
  }

  private backoffMs(): number {
    return Math.min(this.settings.retryMaxMs, this.settings.retryInitialMs * 2 ** Math.max(0, this.reconnectAttempt - 1));
  }

  /**
   * After the connection dropped: forget what was received but not handled and the transaction
   * in progress (Postgres sends them again from the slot), and write what is buffered, so the
   * ack tracker has nothing pending. Replayed changes carry the same versions, so anything
   * written twice is one row under FINAL.
   */
  private async recoverFromLostConnection(): Promise<void> {
    this.subscribed = false;
    this.stream = undefined;
    this.inbox = [];
    await this.draining?.catch(() => {});
    this.inbox = [];
    this.open = undefined;
    await this.buffer.flushAll();
    if (this.fatal) throw this.fatal;
  }

  /**
   * What a SIGKILL leaves behind, for chaos tests in one process: the connection drops with no
   * flush and no status update; buffered rows are abandoned (a flush already in flight may still
   * land). Nothing this instance holds is confirmed any more.
   */
  async kill(): Promise<void> {
    this.stopping = true;
    this.fatal ??= new StreamError('killed');
    this.inbox = [];
    this.buffer.abandon();
    const stream = this.stream;
    this.stream = undefined;
    await stream?.stop();
    this.failStream?.(this.fatal);
  }

  /** Graceful stop: stop reading, flush what was received, confirm it, close the connection. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.stream?.pause();
    this.inbox = []; // received but unhandled: never confirmed, so Postgres sends it again
    await this.draining?.catch(() => {});
    this.buffer.close();
    try {
      await this.buffer.flushAll();
    } catch {
      // The failure is already the daemon's fatal error; nothing more is confirmed.
    }
    this.stream?.sendStatus(this.acks.confirmedLsn);
    // Let the status update reach the socket before the connection closes.
    await new Promise((resolve) => setImmediate(resolve));
    await this.stream?.stop();
    this.failStream?.(new StreamError('stopped'));
  }

  /** A short-lived ordinary connection for startup checks (the stream has its own). */
  private async withSql<T>(use: (sql: pg.Client) => Promise<T>): Promise<T> {
    const sql = await connectPostgres(this.databaseUrl, { application_name: 'runs-cdc startup' });
    try {
      return await use(sql);
    } finally {
      await sql.end();
    }
  }

  /**
   * Load the slot's confirmed position, standing by while another process holds the slot. On a
   * reconnect the ack tracker is kept: it may be ahead of the slot by a status update the lost
   * connection did not deliver, and the next status update sends it.
   */
  private async waitForFreeSlot(sql: pg.Client, reconnecting: boolean): Promise<void> {
    for (;;) {
      const slot = await readSlot(sql, this.settings.slot);
      if (!slot) throw new StreamError(`replication slot ${this.settings.slot} disappeared`);
      // On a reconnect too: the slot may have been invalidated while the connection was down.
      await assertUsableSlot(sql, slot, this.settings.slot);
      if (!reconnecting) this.acks = new AckTracker(slot.confirmedFlushLsn ? parseLsn(slot.confirmedFlushLsn) : 0n);
      if (!slot.active) return;
      this.log.warn(
        { slot: this.settings.slot, pid: slot.activePid },
        `slot ${this.settings.slot} is in use by another process (pid ${slot.activePid}); standing by, retrying every ${this.settings.standbyRetryMs} ms`,
      );
      if (await this.sleepUnlessStopping(this.settings.standbyRetryMs)) return;
    }
  }

  private async sleepUnlessStopping(ms: number): Promise<boolean> {
    const step = Math.min(ms, 100);
    for (let waited = 0; waited < ms && !this.stopping; waited += step) await new Promise((r) => setTimeout(r, step));
    return this.stopping;
  }

  private async streamUntilStopped(): Promise<void> {
    const stream = new ReplicationStream(
      {
        connectionString: this.databaseUrl,
        slot: this.settings.slot,
        publication: this.settings.publication,
        confirmedLsn: () => this.acks.confirmedLsn,
        statusIntervalMs: this.settings.statusIntervalMs,
        onStart: () => {
          this.subscribed = true;
          this.reconnectAttempt = 0;
          this.started?.();
        },
      },
      (item) => this.receive(item),
    );
    this.stream = stream;
    const failed = new Promise<never>((_, reject) => {
      this.failStream = reject;
    });
    this.log.info(
      { slot: this.settings.slot, publication: this.settings.publication, from: formatLsn(this.acks.confirmedLsn) },
      'streaming changes',
    );
    const streaming = stream.run();
    const heartbeat = this.startHeartbeat();
    try {
      await Promise.race([streaming, failed]);
    } catch (error) {
      if (this.fatal) throw this.fatal;
      if (this.stopping) return;
      if ((error as { code?: string }).code === OBJECT_IN_USE) throw new SlotInUseError((error as Error).message);
      throw new ConnectionLostError(`replication connection failed: ${(error as Error).message}`);
    } finally {
      await heartbeat.stop();
    }
    if (this.fatal) throw this.fatal;
    // The stream ended without being asked to: the server closed the connection.
    if (!this.stopping) throw new ConnectionLostError('the replication connection was closed by the server');
  }

  /** Emit a logical message now and then (when configured) on an ordinary connection of its own. */
  private startHeartbeat(): { stop(): Promise<void> } {
    const interval = this.settings.heartbeatIntervalMs;
    if (interval === undefined) return { stop: async () => {} };
    const pool = new pg.Pool(postgresConfig(this.databaseUrl, { max: 1, application_name: 'runs-cdc heartbeat' }));
    pool.on('error', () => {});
    const timer = setInterval(() => {
      pool.query(`SELECT pg_logical_emit_message(false, 'runs-cdc', 'heartbeat')`).then(
        () => {
          this.stats.heartbeats += 1;
        },
        (error: Error) =>
          this.log.warn({ err: error.message }, 'could not write a heartbeat; the slot may advance less while tables are idle'),
      );
    }, interval);
    return {
      stop: async () => {
        clearInterval(timer);
        await pool.end().catch(() => {});
      },
    };
  }

  private receive(item: StreamItem): void {
    if (this.stopping || this.fatal) return;
    this.inbox.push(item);
    if (this.inbox.length >= INBOX_HIGH_WATER) this.stream?.pause();
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.inbox.length > 0 && !this.stopping && !this.fatal) {
        const item = this.inbox.shift() as StreamItem;
        await this.handle(item);
        if (this.inbox.length === 0 && !this.stopping) this.stream?.resume();
      }
    } catch (error) {
      this.die(error as Error);
    }
  }

  private die(error: Error): void {
    if (this.fatal) return;
    this.fatal = error;
    this.inbox = [];
    this.stream?.pause();
    this.log.error({ err: error.message, confirmedLsn: formatLsn(this.acks.confirmedLsn) }, 'replication stopped');
    void this.stream?.stop();
    this.failStream?.(error);
  }

  /** Subscribed to the slot and not ended: what /readyz reports. */
  get streaming(): boolean {
    return this.subscribed && this.ended === undefined;
  }

  /** Whether every received transaction is confirmed (nothing is waiting for ClickHouse). */
  get allConfirmed(): boolean {
    return this.acks.pendingCommits === 0;
  }

  /** Replication lag in seconds: now - commit time of the newest confirmed transaction, 0 when
   * nothing received is waiting. */
  get lagSeconds(): number {
    const last = this.acks.confirmedCommitMs;
    return this.allConfirmed || last === undefined ? 0 : Math.max(0, (Date.now() - last) / 1000);
  }

  private confirm(lsn: Lsn): void {
    this.stats.acks += 1;
    this.stream?.sendStatus(lsn);
    const reached = this.confirmWaiters.filter((w) => lsn >= w.target);
    this.confirmWaiters = this.confirmWaiters.filter((w) => lsn < w.target);
    for (const waiter of reached) waiter.resolve();
  }

  private async handle(item: StreamItem): Promise<void> {
    if (item.kind === 'keepalive') {
      const idle = !this.open && this.buffer.isEmpty && this.inbox.length === 0;
      const lsn = this.acks.keepalive(item.walEnd, idle);
      if (lsn !== undefined) this.confirm(lsn);
      return;
    }
    const { message } = item;
    switch (message.tag) {
      case 'begin':
        this.open = { commitLsn: parseLsn(message.commitLsn as string), ordinal: 0 };
        return;
      case 'commit': {
        this.stats.transactions += 1;
        this.open = undefined;
        const endLsn = parseLsn(message.commitEndLsn as string);
        // commitTime: microseconds since the Unix epoch.
        const commitMs = Number((message.commitTime as bigint) / 1000n);
        // An empty or already-written transaction is confirmable at once.
        const lsn = this.acks.commit(endLsn, this.buffer.lastSeq, commitMs);
        if (lsn !== undefined) this.confirm(lsn);
        return;
      }
      case 'insert':
        return this.handleChange(message.relation, { kind: 'insert', new: message.new as Tuple });
      case 'update':
        return this.handleChange(message.relation, { kind: 'update', old: message.old as Tuple | null, new: message.new as Tuple });
      case 'delete':
        return this.handleChange(message.relation, { kind: 'delete', old: message.old as Tuple | null, key: message.key as Tuple | null });
      case 'truncate':
        return this.handleTruncate(message);
      case 'relation':
        return this.checkSchema(message);
      default:
        return; // type, origin, message: nothing to write
    }
  }

  private sourceTable(relation: Pgoutput.MessageRelation): SourceTable | undefined {
    if (isSourceTable(relation.name)) return relation.name;
    if (!this.warnedRelations.has(relation.name)) {
      this.warnedRelations.add(relation.name);
      this.log.warn(
        { table: `${relation.schema}.${relation.name}` },
        'publication sends a table runs-cdc does not replicate; its changes are skipped',
      );
    }
    return undefined;
  }

  private nextVersion(): bigint {
    if (!this.open) throw new StreamError('a change arrived outside a transaction (no BEGIN): refusing to guess its version');
    this.open.ordinal += 1;
    return changeVersion(this.open.commitLsn, this.open.ordinal);
  }

  private async handleChange(relation: Pgoutput.MessageRelation, change: Change): Promise<void> {
    const table = this.sourceTable(relation);
    if (!table) {
      this.stats.ignoredChanges += 1;
      return;
    }
    this.stats.changes += 1;
    const key = `${table}/${change.kind}`;
    this.stats.received[key] = (this.stats.received[key] ?? 0) + 1;
    const version = this.nextVersion();
    const result = transformChange(change, table, version);
    for (const coercion of result.coercions) {
      this.stats.coercions += 1;
      if (this.stats.coercions <= MAX_COERCION_WARNINGS) {
        this.log.warn({ table, ...coercion }, 'a value could not be stored as it is; stored NULL or empty instead');
      }
    }
    let rows = result.rows;
    if (result.keyOnlyDelete || result.missingColumns.length > 0) rows = await this.completeFromClickHouse(table, change, result, version);
    // Buffered encoded: the row objects die young, and the line is what the insert sends.
    const encoded = rows.map(encodeRow);
    const bytes = encoded.reduce((sum, row) => sum + row.line.length, 0);
    if (!this.buffer.hasRoomFor(rows.length, bytes)) {
      this.stream?.pause();
      await this.buffer.waitForRoom(rows.length, bytes);
    }
    for (const [i, row] of rows.entries()) {
      const encodedRow = encoded[i] as EncodedRow;
      this.buffer.append(encodedRow, this.targets.targetOf(row), encodedRow.line.length);
    }
  }

  /**
   * Without FULL identity a change may lack values: a delete carries only the id, and an update
   * marks unchanged TOASTed columns without sending them. Take them from ClickHouse's current row,
   * after flushing so that row reflects every earlier change.
   */
  private async completeFromClickHouse(
    table: SourceTable,
    change: Change,
    result: ReturnType<typeof transformChange>,
    version: bigint,
  ): Promise<ClickHouseRow[]> {
    await this.buffer.flushAll();
    this.stats.lookups += 1;
    const id = result.keyOnlyDelete?.id ?? (change.kind !== 'delete' ? change.new.id : undefined) ?? '';
    // The live row is the last one (a moved row's tombstone comes first).
    const live = result.rows.at(-1);
    // Look in the live row's target first; a key-only delete's organization is unknown, and a run
    // whose organization changed is still in its old target: then every target is tried.
    const first = live ? this.targets.targetOf(live) : undefined;
    const targets = this.targets.all.sort(([a], [b]) => Number(b === first) - Number(a === first));
    let current: ClickHouseRow | undefined;
    for (const [, target] of targets) {
      current = (await target.currentRows(table, [id])).get(id);
      if (current) break;
    }
    if (result.keyOnlyDelete) {
      if (!current) {
        this.stats.unresolvedDeletes += 1;
        this.log.warn({ table, id }, 'delete without FULL identity for a run not in ClickHouse; nothing to tombstone');
        return [];
      }
      return [tombstoneOf(current, version)];
    }
    for (const source of result.missingColumns) {
      const target = SOURCE_COLUMNS.find((c) => c.source === source)?.target as string;
      if (live && current && target in current) live[target] = current[target] as ClickHouseRow[string];
      else this.log.warn({ table, id, column: source }, 'unchanged TOASTed value not in ClickHouse either; stored NULL');
    }
    return result.rows;
  }

  /** Stop at a mapped column that is gone or changed type; note columns the mapping lacks. */
  private checkSchema(relation: Pgoutput.MessageRelation): void {
    if (!isSourceTable(relation.name)) return;
    const drift = checkRelation(relation.name, relation.columns);
    if (drift.incompatible.length > 0) {
      throw new StreamError(
        `the schema of ${relation.name} changed: ${drift.incompatible.join('; ')} (nothing after this point is acknowledged)`,
      );
    }
    for (const column of drift.unmapped) {
      const key = `${relation.name}.${column}`;
      if (this.warnedRelations.has(key)) continue;
      this.warnedRelations.add(key);
      this.log.warn({ table: relation.name, column }, 'a column runs-cdc does not map appeared in Postgres; it is not replicated');
    }
  }

  private async handleTruncate(message: Pgoutput.MessageTruncate): Promise<void> {
    const tables = message.relations.map((r) => r.name).filter(isSourceTable);
    if (tables.length === 0) return;
    this.stats.truncates += 1;
    for (const table of tables) this.stats.received[`${table}/truncate`] = (this.stats.received[`${table}/truncate`] ?? 0) + 1;
    if (this.settings.onTruncate === 'fail') {
      // Thrown while the TRUNCATE's transaction is open: nothing from it on is acknowledged.
      throw new StreamError(
        `TRUNCATE of ${tables.join(', ')} replicated and --on-truncate=fail: stopped before acknowledging it; restart with --on-truncate=delete (tombstone the table's rows in ClickHouse) or ignore`,
      );
    }
    if (this.settings.onTruncate === 'ignore') {
      this.log.warn({ tables }, 'TRUNCATE ignored (--on-truncate=ignore): ClickHouse keeps the rows Postgres no longer has');
      return;
    }
    const version = this.nextVersion();
    // Everything before the TRUNCATE in the stream must be in ClickHouse before it is tombstoned;
    // rows inserted after it get higher versions and survive.
    await this.buffer.flushAll();
    for (const table of tables) {
      let rows = 0;
      for (const [, target] of this.targets.all) rows += await target.tombstoneSourceTable(table, version);
      this.log.warn({ table, rows }, 'TRUNCATE replicated: every earlier row of this table is now deleted in ClickHouse');
    }
  }
}
