/**
 * The transaction applier: stream items in, one at a time and in wire order; rows and commits out
 * to the durable buffer. It assigns versions (commit LSN and ordinal), checks relations for
 * schema drift, replicates TRUNCATE, and completes changes that lack values by reading the current
 * row back through the targets' RunsReader. It knows nothing of connections: the supervisor feeds
 * it, and it pauses the source while its inbox or the buffer is full.
 */
import type { Pgoutput } from 'pg-logical-replication';
import type { Config } from '../config.ts';
import { StreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { type Lsn, parseLsn } from '../lsn.ts';
import { isSourceTable, SOURCE_COLUMNS, SOURCE_TABLES, type SourceTable } from '../schema/columns.ts';
import { changeVersion } from '../schema/version.ts';
import { LineSlab } from '../sink/line-slab.ts';
import type { EncodedRow } from '../sink/runs-sink.ts';
import { encodeRoutedRow, type RoutedEncodedRow, type RunsTargets } from '../sink/targets.ts';
import type { StreamItem } from '../source/stream.ts';
import { keepMessageBytes, textTupleOf, WireTuple } from '../source/wire-tuples.ts';
import { type Change, type ClickHouseRow, type TransformResult, type Tuple, tombstoneOf, transformChange } from '../transform/row.ts';
import { checkRelation } from '../transform/schema-drift.ts';
import type { Coercion } from '../transform/values.ts';
import { encodeWireChange, type WireChange } from '../transform/wire-line.ts';
import type { DurableBuffer } from './durable-buffer.ts';
import type { DaemonStats } from './snapshot.ts';

/** Pause the socket when this many received items wait to be handled. */
const INBOX_HIGH_WATER = 2_000;
/** Warn about coerced values at most this many times per run (all are counted). */
const MAX_COERCION_WARNINGS = 20;

export interface OpenTransaction {
  commitLsn: Lsn;
  ordinal: number;
}

/** Where items come from, for backpressure. */
export interface PausableSource {
  pause(): void;
  resume(): void;
}

export interface ApplierOptions {
  buffer: DurableBuffer<EncodedRow>;
  /** Where rows go, and where read-backs read from. */
  targets: RunsTargets;
  onTruncate: Config['onTruncate'];
  stats: DaemonStats;
  log: Logger;
  /** The stream currently feeding the applier (it changes on reconnect). */
  source: () => PausableSource | undefined;
  /** Handling an item failed: replication must stop. */
  onFailure: (error: Error) => void;
}

/** The stats keys of changes received, made once rather than per change. */
const RECEIVED_KEYS = Object.fromEntries(
  SOURCE_TABLES.map((table) => [table, { insert: `${table}/insert`, update: `${table}/update`, delete: `${table}/delete` }]),
) as Record<SourceTable, Record<WireChange['kind'], string>>;

/** A change as the row path takes it: its tuples' values as text. */
function textChangeOf(wire: WireChange, key: Tuple | null): Change {
  switch (wire.kind) {
    case 'insert':
      return { kind: 'insert', new: textTupleOf(wire.new) };
    case 'update':
      return { kind: 'update', old: wire.old && textTupleOf(wire.old), new: textTupleOf(wire.new) };
    case 'delete':
      return { kind: 'delete', old: wire.old && textTupleOf(wire.old), key };
  }
}

export class TransactionApplier {
  private inbox: StreamItem[] = [];
  private draining: Promise<void> | undefined;
  /** Set while drain() runs: it may finish without ever awaiting, within the receive that started it. */
  private drainRunning = false;
  private open: OpenTransaction | undefined;
  private halted = false;
  private readonly warned = new Set<string>();
  private readonly buffer: DurableBuffer<EncodedRow>;
  private readonly stats: DaemonStats;
  private readonly log: Logger;
  /** Where this applier's lines are encoded: slabs reused once the buffer has written their rows. */
  private readonly lines: LineSlab;

  constructor(private readonly options: ApplierOptions) {
    ({ buffer: this.buffer, stats: this.stats, log: this.log } = options);
    this.lines = new LineSlab(this.buffer);
  }

  /** Queue an item; items are handled one at a time, in the order received. */
  receive(item: StreamItem): void {
    if (this.halted) return;
    this.inbox.push(item);
    if (this.inbox.length >= INBOX_HIGH_WATER) this.options.source()?.pause();
    if (!this.drainRunning) this.draining = this.drain();
    // Left waiting: its tuples point into the connection's read buffer, which the next read may reuse.
    if (this.inbox.at(-1) === item && item.kind === 'message') {
      const message = item.message as { old?: unknown; new?: unknown };
      keepMessageBytes([message.old, message.new].filter((t): t is WireTuple => t instanceof WireTuple));
    }
  }

  /**
   * Forget what was received but not handled, and the transaction in progress (Postgres sends them
   * again from the slot); resolves once the item being handled is done.
   */
  async discardReceived(): Promise<void> {
    this.inbox = [];
    await this.draining?.catch(() => {});
    this.inbox = [];
    this.open = undefined;
  }

  /** Handle nothing more (stop, failure). */
  halt(): void {
    this.halted = true;
    this.inbox = [];
  }

  private async drain(): Promise<void> {
    this.drainRunning = true;
    try {
      while (this.inbox.length > 0 && !this.halted) {
        const item = this.inbox.shift() as StreamItem;
        // Most items are handled at once; only those that wait (for room, a read-back) return a promise.
        const waiting = this.handle(item);
        if (waiting) await waiting;
        if (this.inbox.length === 0 && !this.halted) this.options.source()?.resume();
      }
    } catch (error) {
      this.options.onFailure(error as Error);
    } finally {
      this.drainRunning = false;
    }
  }

  private handle(item: StreamItem): Promise<void> | undefined {
    if (item.kind === 'keepalive') {
      this.buffer.keepalive(item.walEnd, !this.open && this.inbox.length === 0);
      return;
    }
    const { message } = item;
    switch (message.tag) {
      case 'begin':
        this.open = { commitLsn: parseLsn(message.commitLsn as string), ordinal: 0 };
        return;
      case 'commit':
        this.stats.transactions += 1;
        this.open = undefined;
        // An empty or already-written transaction is confirmable at once. commitTime: µs since the epoch.
        this.buffer.commit(parseLsn(message.commitEndLsn as string));
        return;
      // Tuples arrive as WireTuples (source/wire-tuples.ts); a key-only old tuple as text.
      case 'insert':
        return this.applyChange(message.relation, { kind: 'insert', new: message.new as unknown as WireTuple });
      case 'update':
        return this.applyChange(message.relation, {
          kind: 'update',
          old: message.old as unknown as WireTuple | null,
          new: message.new as unknown as WireTuple,
        });
      case 'delete':
        return this.applyChange(message.relation, { kind: 'delete', old: message.old as unknown as WireTuple | null }, message.key);
      case 'truncate':
        return this.applyTruncate(message);
      case 'relation':
        this.checkSchema(message);
        return;
      default:
        return; // type, origin, message: nothing to write
    }
  }

  private warnOnce(key: string, fields: object, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(fields, message);
  }

  private nextVersion(): bigint {
    if (!this.open) throw new StreamError('a change arrived outside a transaction (no BEGIN): refusing to guess its version');
    this.open.ordinal += 1;
    return changeVersion(this.open.commitLsn, this.open.ordinal);
  }

  private applyChange(relation: Pgoutput.MessageRelation, wire: WireChange, key: Tuple | null = null): Promise<void> | undefined {
    if (!isSourceTable(relation.name)) {
      this.warnOnce(
        relation.name,
        { table: `${relation.schema}.${relation.name}` },
        'publication sends a table runs-cdc does not replicate; its changes are skipped',
      );
      this.stats.ignoredChanges += 1;
      return;
    }
    const table = relation.name;
    this.stats.changes += 1;
    const counted = RECEIVED_KEYS[table][wire.kind];
    this.stats.received[counted] = (this.stats.received[counted] ?? 0) + 1;
    const version = this.nextVersion();
    // Message bytes straight to lines for every change that carries all its values.
    const fast = encodeWireChange(wire, table, version, this.lines);
    if (!fast) return this.applyRows(table, textChangeOf(wire, key), version);
    this.noteCoercions(table, fast.coercions);
    return this.bufferRows(fast.rows);
  }

  /** The row path: for changes that lack values, which may need the store's current row. */
  private async applyRows(table: SourceTable, change: Change, version: bigint): Promise<void> {
    const result = transformChange(change, table, version);
    this.noteCoercions(table, result.coercions);
    let rows = result.rows;
    if (result.keyOnlyDelete || result.missingColumns.length > 0) rows = await this.completeFromStore(table, change, result, version);
    // Buffered encoded: the row objects die young, and the line is what the insert sends.
    await this.bufferRows(rows.map(encodeRoutedRow));
  }

  private noteCoercions(table: SourceTable, coercions: readonly Coercion[]): void {
    for (const coercion of coercions) {
      this.stats.coercions += 1;
      if (this.stats.coercions <= MAX_COERCION_WARNINGS) {
        this.log.warn({ table, ...coercion }, 'a value could not be stored as it is; stored NULL or empty instead');
      }
    }
  }

  /** Buffer a change's rows; a promise only when the buffer is full and they wait for room. */
  private bufferRows(encoded: readonly RoutedEncodedRow[]): Promise<void> | undefined {
    let bytes = 0;
    for (const row of encoded) bytes += row.line.length;
    if (!this.buffer.hasRoomFor(encoded.length, bytes)) return this.bufferWhenRoom(encoded, bytes);
    for (const row of encoded) this.buffer.append(row, this.options.targets.targetOfOrganization(row.organizationId), row.line.length);
  }

  private async bufferWhenRoom(encoded: readonly RoutedEncodedRow[], bytes: number): Promise<void> {
    this.options.source()?.pause();
    await this.buffer.waitForRoom(encoded.length, bytes);
    for (const row of encoded) this.buffer.append(row, this.options.targets.targetOfOrganization(row.organizationId), row.line.length);
  }

  /**
   * Without FULL identity a change may lack values: a delete carries only the id, and an update
   * marks unchanged TOASTed columns without sending them. Take them from the store's current row,
   * after flushing so that row reflects every earlier change.
   */
  private async completeFromStore(table: SourceTable, change: Change, result: TransformResult, version: bigint): Promise<ClickHouseRow[]> {
    await this.buffer.flushAll();
    this.stats.lookups += 1;
    const id = result.keyOnlyDelete?.id ?? (change.kind !== 'delete' ? change.new.id : undefined) ?? '';
    // The live row is the last one (a moved row's tombstone comes first).
    const live = result.rows.at(-1);
    // Look in the live row's target first; a key-only delete's organization is unknown, and a run
    // whose organization changed is still in its old target: then every target is tried.
    const first = live ? this.options.targets.targetOf(live) : undefined;
    const targets = this.options.targets.all.sort(([a], [b]) => Number(b === first) - Number(a === first));
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

  /** Stop at a mapped column that is gone or changed type; note columns the mapping lacks, and an
   * identity that is no longer FULL (degraded: warned once per table, shown by metrics and /readyz). */
  private checkSchema(relation: Pgoutput.MessageRelation): void {
    if (!isSourceTable(relation.name)) return;
    const degraded = this.stats.degradedIdentity;
    if (relation.replicaIdentity === 'full') delete degraded[relation.name];
    else if (!degraded[relation.name]) {
      const identity = relation.replicaIdentity.toUpperCase();
      degraded[relation.name] = identity;
      this.warnOnce(
        `identity:${relation.name}`,
        { table: relation.name, identity },
        `DEGRADED: ${relation.name} now has REPLICA IDENTITY ${identity}, not FULL: its deletes carry only the id and unchanged TOASTed values are looked up in ClickHouse; run ALTER TABLE "${relation.name}" REPLICA IDENTITY FULL`,
      );
    }
    const drift = checkRelation(relation.name, relation.columns);
    if (drift.incompatible.length > 0) {
      throw new StreamError(
        `the schema of ${relation.name} changed: ${drift.incompatible.join('; ')} (nothing after this point is acknowledged)`,
      );
    }
    for (const column of drift.unmapped) {
      this.warnOnce(
        `${relation.name}.${column}`,
        { table: relation.name, column },
        'a column runs-cdc does not map appeared in Postgres; it is not replicated',
      );
    }
  }

  private async applyTruncate(message: Pgoutput.MessageTruncate): Promise<void> {
    const tables = message.relations.map((r) => r.name).filter(isSourceTable);
    if (tables.length === 0) return;
    this.stats.truncates += 1;
    for (const table of tables) this.stats.received[`${table}/truncate`] = (this.stats.received[`${table}/truncate`] ?? 0) + 1;
    if (this.options.onTruncate === 'fail') {
      // Thrown while the TRUNCATE's transaction is open: nothing from it on is acknowledged.
      throw new StreamError(
        `TRUNCATE of ${tables.join(', ')} replicated and --on-truncate=fail: stopped before acknowledging it; restart with --on-truncate=delete (tombstone the table's rows in ClickHouse) or ignore`,
      );
    }
    if (this.options.onTruncate === 'ignore') {
      this.log.warn({ tables }, 'TRUNCATE ignored (--on-truncate=ignore): ClickHouse keeps the rows Postgres no longer has');
      return;
    }
    const version = this.nextVersion();
    // Everything before the TRUNCATE in the stream must be in the store before it is tombstoned;
    // rows inserted after it get higher versions and survive.
    await this.buffer.flushAll();
    for (const table of tables) {
      let rows = 0;
      for (const [, target] of this.options.targets.all) rows += await target.tombstoneSourceTable(table, version);
      this.log.warn({ table, rows }, 'TRUNCATE replicated: every earlier row of this table is now deleted in ClickHouse');
    }
  }
}
