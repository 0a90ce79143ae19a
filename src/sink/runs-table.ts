/**
 * The runs table in ClickHouse: the `RunsSink` and `RunsReader` of runs-sink.ts (read its
 * contract there). `write` resolves once ClickHouse has accepted every row with a synchronous
 * insert; with dead letters on, a batch ClickHouse refuses for its content is split, and the rows
 * it refuses are in `dead_letters` instead. Transient failures are retried (see retry.ts: without
 * limit unless the policy sets one); a failure no retry can fix rejects with SinkFatalError.
 */
import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../config.ts';
import { RowRejectedError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { TARGET_COLUMNS } from '../transform/columns.ts';
import { type ClickHouseRow, tombstoneOf } from '../transform/row.ts';
import { assertIdentifier } from './clickhouse.ts';
import { DeadLetters } from './dead-letters.ts';
import { type RetryContext, type RetryPolicy, withClickHouseRetry } from './retry.ts';
import { decodeRow, type EncodedRow, emptySinkStats, encodeRow, type RunsReader, type RunsSink, type SinkStats } from './runs-sink.ts';

export { decodeRow, type EncodedRow, encodeRow, type SinkStats } from './runs-sink.ts';

export const RUNS_TABLE = 'task_runs_v2';
const INSERT_COLUMNS = TARGET_COLUMNS.map((c) => c.name);

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
    config: Pick<Config, 'clickhouseDatabase' | 'retryInitialMs' | 'retryMaxMs'>,
    log: Logger,
    { maxRetries, deadLetters = true }: RunsTableOptions = {},
  ): RunsTable {
    const policy = { initialDelayMs: config.retryInitialMs, maxDelayMs: config.retryMaxMs, maxRetries };
    const table = new RunsTable(client, config.clickhouseDatabase, policy, log);
    if (deadLetters) table.deadLetters = new DeadLetters(client, config.clickhouseDatabase);
    return table;
  }

  readonly retryContext: RetryContext;

  constructor(
    readonly client: ClickHouseClient,
    readonly database: string,
    retry: RetryPolicy,
    log: Logger,
  ) {
    this.qualifiedName = `${assertIdentifier(database, 'ClickHouse database')}.${RUNS_TABLE}`;
    this.retryContext = { policy: retry, log, stats: this.stats, target: this.qualifiedName };
  }

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
      await this.writeEncoded(rows.slice(0, half), signal);
      await this.writeEncoded(rows.slice(half), signal);
    }
  }

  private async insert(rows: readonly EncodedRow[], signal?: AbortSignal): Promise<void> {
    if (rows.length === 0) return;
    const body = `${rows.map((row) => row.line).join('\n')}\n`;
    await this.withRetry(
      `an insert of ${rows.length} rows`,
      () =>
        this.client.insert({
          table: this.qualifiedName,
          // One string, not an object stream: raw formats go to ClickHouse as they are.
          values: Readable.from([body], { objectMode: false }),
          columns: INSERT_COLUMNS as [string, ...string[]],
          format: 'TabSeparated',
        }),
      signal,
    );
    this.stats.rowsWritten += rows.length;
    this.stats.inserts += 1;
    for (const row of rows) {
      const key = `${row.sourceTable}/${row.deleted ? 'tombstone' : 'live'}`;
      this.stats.rowsByTable[key] = (this.stats.rowsByTable[key] ?? 0) + 1;
    }
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
        { table: sourceTable, version: version.toString(), limit: TOMBSTONE_PAGE_ROWS },
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
        const result = await this.client.query({
          query: `SELECT * FROM ${this.qualifiedName} FINAL WHERE source_table = {table:String} AND _is_deleted = 0 AND ${condition}`,
          query_params: params,
          format: 'JSONEachRow',
        });
        return result.json<ClickHouseRow>();
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
