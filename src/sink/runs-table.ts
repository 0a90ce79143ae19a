/**
 * The runs table in ClickHouse: the `RunsSink` and `RunsReader` of runs-sink.ts (read its
 * contract there). `write` resolves once ClickHouse has accepted every row with a synchronous
 * insert; with dead letters on, a batch ClickHouse refuses for its content is split, and the rows
 * it refuses are in `dead_letters` instead. Transient failures are retried (see retry.ts: without
 * limit unless the policy sets one); a failure no retry can fix rejects with SinkFatalError.
 */
import { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import type { Config } from '../config.ts';
import { RowRejectedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { TARGET_COLUMNS } from '../schema/columns.ts';
import { assertIdentifier, RUNS_TABLE, runsTableIn } from '../schema/tables.ts';
import { LEGACY_SUPERSEDED_VERSION, rankedVersion } from '../schema/version.ts';
import { type ClickHouseRow, supersededLegacyTombstone, tombstoneOf } from '../transform/row.ts';
import { DeadLetters } from './dead-letters.ts';
import { runDdl } from './migrations.ts';
import { queryRows } from './read.ts';
import { type RetryContext, type RetryPolicy, withClickHouseRetry } from './retry.ts';
import {
  countWrite,
  decodeRow,
  type EncodedRow,
  emptySinkStats,
  encodeRow,
  insertBody,
  type RunsReader,
  type RunsSink,
  type SinkStats,
} from './runs-sink.ts';

const INSERT_COLUMNS = TARGET_COLUMNS.map((c) => c.name);

/**
 * Read-after-write on a cluster (`migrate --cluster`). An insert returns once one replica of each
 * shard has its rows (insert_distributed_sync); the other replicas fetch them later, and a read
 * through the Distributed table may be answered by one of those. So before a read that must see
 * runs-cdc's own writes (a TRUNCATE's pages, which read until their own tombstones hide every
 * row; degraded-identity lookups; verify --repair's tombstones), every active replica is made to
 * fetch the parts written so far: SYSTEM SYNC REPLICA ... LIGHTWEIGHT (fetches only, not merges),
 * ON CLUSTER, waiting for the active replicas only (a down replica answers no reads either).
 * Chosen over insert_quorum + select_sequential_consistency, which would slow every insert and
 * serialize the backfill's parallel ones; this costs only those reads, which are rare. The writer
 * needs the SYSTEM SYNC REPLICA privilege. Without a cluster nothing changes.
 */
export function syncReplicasStatement(database: string, cluster: string): string {
  return `SYSTEM SYNC REPLICA ON CLUSTER ${assertIdentifier(cluster, 'ClickHouse cluster')} ${database}.${RUNS_TABLE}_local LIGHTWEIGHT`;
}
// cast: the client's type of this setting predates the *_only_active modes (ClickHouse 23.x)
export const SYNC_REPLICAS_SETTINGS = { distributed_ddl_output_mode: 'throw_only_active' } as unknown as ClickHouseSettings;

/** Rows tombstoned per round trip when replicating a TRUNCATE. */
const TOMBSTONE_PAGE_ROWS = 10_000;

export interface RunsTableOptions {
  /** Retries of each write before it fails; absent: without limit. */
  maxRetries?: number;
  /** Keep rows ClickHouse refuses for their content in dead_letters (default) instead of failing. */
  deadLetters?: boolean;
}

export class RunsTable implements RunsSink, RunsReader {
  readonly qualifiedName: string;
  readonly stats: SinkStats = emptySinkStats();

  /** The runs table of `config.clickhouseDatabase`, retrying as the config says. */
  static fromConfig(
    client: ClickHouseClient,
    config: Pick<Config, 'clickhouseDatabase' | 'retryInitialMs' | 'retryMaxMs'> & Partial<Pick<Config, 'clickhouseCluster'>>,
    log: Logger,
    { maxRetries, deadLetters = true }: RunsTableOptions = {},
  ): RunsTable {
    const policy = { initialDelayMs: config.retryInitialMs, maxDelayMs: config.retryMaxMs, maxRetries };
    const table = new RunsTable(client, config.clickhouseDatabase, policy, log);
    if (deadLetters) table.deadLetters = new DeadLetters(client, config.clickhouseDatabase);
    table.cluster = config.clickhouseCluster;
    return table;
  }

  readonly retryContext: RetryContext;

  constructor(
    readonly client: ClickHouseClient,
    readonly database: string,
    retry: RetryPolicy,
    log: Logger,
  ) {
    this.qualifiedName = runsTableIn(database);
    this.retryContext = { policy: retry, log, stats: this.stats, target: this.qualifiedName };
  }

  /** The cluster the tables were migrated ON (reads of own writes then sync the replicas first). */
  cluster: string | undefined;

  /** Where rows ClickHouse refuses for their content go; without it such a write fails. */
  deadLetters: DeadLetters | undefined;

  /**
   * Write rows. With dead letters set, a write refused for the content of some rows is split in
   * halves until the poison rows are alone; those are dead-lettered, the rest written.
   */
  write(rows: readonly ClickHouseRow[], signal?: AbortSignal): Promise<void> {
    return this.writeEncoded(rows.map(encodeRow), signal);
  }

  /** `write` for rows already encoded (the daemon buffers them encoded). */
  async writeEncoded(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<void> {
    await this.writeSplitting(await this.supersedeMigratedLegacyRows(rows, signal), signal);
  }

  /**
   * One run, two tables (see schema/version.ts): a live "TaskRun" row of a run that has a
   * task_run_v2 copy (in ClickHouse, or earlier in this very write) becomes a tombstone at
   * LEGACY_SUPERSEDED_VERSION, so a legacy row under a key the v2 copy does not share (a moved
   * legacy copy, a legacy insert after the copy moved away) cannot show the run twice. Costs one
   * lookup per write that holds live legacy rows; writes without any cost nothing.
   */
  private async supersedeMigratedLegacyRows(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<readonly EncodedRow[]> {
    const legacyIds = new Set<string>();
    const inThisWrite = new Set<string>();
    for (const row of rows) {
      if (row.sourceTable === 'TaskRun') {
        if (!row.deleted) legacyIds.add(row.runId);
      } else inThisWrite.add(row.runId);
    }
    if (legacyIds.size === 0) return rows;
    const migrated = await this.migratedRunIds(
      [...legacyIds].filter((id) => !inThisWrite.has(id)),
      signal,
    );
    for (const id of inThisWrite) migrated.add(id);
    if (![...legacyIds].some((id) => migrated.has(id))) return rows;
    return rows.map((row) =>
      row.sourceTable === 'TaskRun' && !row.deleted && migrated.has(row.runId) ? encodeRow(supersededLegacyTombstone(decodeRow(row))) : row,
    );
  }

  /** Which of these runs ClickHouse holds a task_run_v2 row (or a superseded legacy row) of,
   * deleted or not: runs whose v2 copy is canonical. */
  async migratedRunIds(runIds: readonly string[], signal?: AbortSignal): Promise<Set<string>> {
    if (runIds.length === 0) return new Set();
    return this.withRetry(
      `looking up task_run_v2 copies of ${runIds.length} legacy runs`,
      async () => {
        const rows = await queryRows<{ run_id: string }>(this.client, {
          query: `SELECT DISTINCT run_id FROM ${this.qualifiedName} WHERE run_id IN {ids:Array(String)} AND _version >= {floor:UInt128}`,
          query_params: { ids: runIds, floor: LEGACY_SUPERSEDED_VERSION.toString() },
          abort_signal: signal,
        });
        return new Set(rows.map((r) => r.run_id));
      },
      signal,
    );
  }

  private async writeSplitting(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<void> {
    try {
      await this.insert(rows, signal);
    } catch (error) {
      if (!(error instanceof RowRejectedError) || !this.deadLetters) throw error;
      if (rows.length === 1) {
        const row = decodeRow(rows[0] as EncodedRow);
        await this.withRetry(
          'recording a dead letter',
          () => (this.deadLetters as DeadLetters).record(row, error.reason, error.detail),
          signal,
        );
        this.stats.deadLetters += 1;
        this.retryContext.log.error(
          { table: row.source_table, runId: row.run_id, reason: error.reason, err: error.detail },
          'ClickHouse refused a row; it is in dead_letters (runs-cdc dead-letters list|replay) and replication goes on',
        );
        return;
      }
      const half = Math.ceil(rows.length / 2);
      await this.writeSplitting(rows.slice(0, half), signal);
      await this.writeSplitting(rows.slice(half), signal);
    }
  }

  private async insert(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<void> {
    if (rows.length === 0) return;
    const body = insertBody(rows);
    await this.withRetry(
      `an insert of ${rows.length} rows`,
      () =>
        this.client.insert({
          table: this.qualifiedName,
          // Byte chunks, not an object stream: raw formats go to ClickHouse as they are.
          values: Readable.from(body, { objectMode: false }),
          columns: INSERT_COLUMNS as [string, ...string[]],
          format: 'TabSeparated',
        }),
      signal,
    );
    countWrite(this.stats, rows);
  }

  /**
   * Replicate a TRUNCATE: a tombstone at `version` for every live row of `sourceTable` older than
   * it. Rows written after the TRUNCATE have higher versions and stay; replaying it is harmless.
   * Pages through the rows (each page's tombstones hide it from the next read), so memory stays
   * bounded. Not one INSERT ... SELECT: chDB silently inserts nothing for some of those.
   */
  async tombstoneSourceTable(sourceTable: string, version: bigint, signal?: AbortSignal): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.liveRows(
        `live rows of ${sourceTable} for a TRUNCATE`,
        '_version < {version:UInt128} LIMIT {limit:UInt32}',
        { table: sourceTable, version: rankedVersion(sourceTable, version).toString(), limit: TOMBSTONE_PAGE_ROWS },
        signal,
      );
      if (rows.length === 0) return total;
      await this.write(
        rows.map((row) => tombstoneOf(row, version)),
        signal,
      );
      total += rows.length;
    }
  }

  /** The current (deduplicated, not deleted) rows of `{table:String}` matching `condition`. */
  private async liveRows(what: string, condition: string, params: Record<string, unknown>, signal?: AbortSignal): Promise<ClickHouseRow[]> {
    return this.withRetry(
      `reading ${what}`,
      async () => {
        if (this.cluster) await runDdl(this.client, syncReplicasStatement(this.database, this.cluster), SYNC_REPLICAS_SETTINGS);
        return queryRows<ClickHouseRow>(this.client, {
          query: `SELECT * FROM ${this.qualifiedName} FINAL WHERE source_table = {table:String} AND _is_deleted = 0 AND ${condition}`,
          query_params: params,
        });
      },
      signal,
    );
  }

  private withRetry<T>(what: string, operation: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return withClickHouseRetry(this.retryContext, what, operation, signal);
  }

  /** Mismatches between the migrated table and the column mapping (empty when they agree). */
  async schemaMismatches(): Promise<string[]> {
    const result = await this.client.query({
      query: 'SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String}',
      query_params: { db: this.database, table: RUNS_TABLE },
      format: 'JSONEachRow',
    });
    const actual = new Map((await result.json<{ name: string; type: string }>()).map((c) => [c.name, c.type]));
    if (actual.size === 0) return [`table ${this.qualifiedName} does not exist`];
    const problems: string[] = [];
    for (const { name, type } of TARGET_COLUMNS) {
      const found = actual.get(name);
      if (found === undefined) problems.push(`column ${name} is missing`);
      else if (found !== type) problems.push(`column ${name} is ${found}, expected ${type}`);
    }
    return problems;
  }

  /** The current (deduplicated, not deleted) rows of the given runs, for filling values a change
   * did not carry. */
  async currentRows(sourceTable: string, runIds: readonly string[]): Promise<Map<string, ClickHouseRow>> {
    if (runIds.length === 0) return new Map();
    const rows = await this.liveRows(`the current rows of ${runIds.length} ${sourceTable} runs`, 'run_id IN {ids:Array(String)}', {
      table: sourceTable,
      ids: runIds,
    });
    return new Map(rows.map((r) => [String(r.run_id), r]));
  }
}
