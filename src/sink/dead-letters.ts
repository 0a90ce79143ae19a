/**
 * Poison rows: rows ClickHouse refuses for their content. They are kept, with the error and the
 * commit LSN their version encodes, in `dead_letters` instead of blocking the stream forever or
 * being dropped; `runs-cdc dead-letters replay` tries them again once the cause is fixed.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { formatLsn } from '../lsn.ts';
import { assertIdentifier } from '../schema/tables.ts';
import { versionCommitLsn } from '../schema/version.ts';
import type { ClickHouseRow } from '../transform/row.ts';
import { utcTimestamp } from '../utc.ts';

export interface DeadLetter {
  sourceTable: string;
  runId: string;
  version: string;
  commitLsn: string;
  reason: string;
  error: string;
  row: ClickHouseRow;
  createdAt: string;
  replayed: boolean;
  revision: number;
}

interface DeadLetterRow {
  source_table: string;
  run_id: string;
  _version: string;
  commit_lsn: string;
  reason: string;
  error: string;
  row: string;
  created_at: string;
  replayed: boolean;
  revision: string;
}

export class DeadLetters {
  readonly table: string;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
  ) {
    this.table = `${assertIdentifier(database, 'ClickHouse database')}.dead_letters`;
  }

  async record(row: ClickHouseRow, reason: string, error: string): Promise<void> {
    const version = String(row._version ?? '0');
    const lsn = versionCommitLsn(BigInt(version));
    await this.save({
      sourceTable: String(row.source_table),
      runId: String(row.run_id),
      version,
      commitLsn: lsn === 0n ? '' : formatLsn(lsn), // version 0: a backfilled row
      reason,
      error: error.slice(0, 2000),
      row,
      createdAt: utcTimestamp(),
      replayed: false,
      revision: 1,
    });
  }

  async list(includeReplayed = false): Promise<DeadLetter[]> {
    const result = await this.client.query({
      query: `SELECT * FROM ${this.table} FINAL ${includeReplayed ? '' : 'WHERE NOT replayed'} ORDER BY created_at, source_table, run_id`,
      format: 'JSONEachRow',
    });
    return (await result.json<DeadLetterRow>()).map((r) => ({
      sourceTable: r.source_table,
      runId: r.run_id,
      version: r._version,
      commitLsn: r.commit_lsn,
      reason: r.reason,
      error: r.error,
      row: JSON.parse(r.row) as ClickHouseRow,
      createdAt: r.created_at,
      replayed: Boolean(r.replayed),
      revision: Number(r.revision),
    }));
  }

  async markReplayed(letter: DeadLetter): Promise<void> {
    await this.save({ ...letter, replayed: true, revision: letter.revision + 1 });
  }

  private async save(letter: DeadLetter): Promise<void> {
    const row: DeadLetterRow = {
      source_table: letter.sourceTable,
      run_id: letter.runId,
      _version: letter.version,
      commit_lsn: letter.commitLsn,
      reason: letter.reason,
      error: letter.error,
      row: JSON.stringify(letter.row),
      created_at: letter.createdAt,
      replayed: letter.replayed,
      revision: String(letter.revision),
    };
    await this.client.insert({ table: this.table, values: [row], format: 'JSONEachRow' });
  }
}

/** Write each dead letter again through `write` (which must not dead-letter); mark the ones that
 * land as replayed. Returns what happened to each. */
export async function replayDeadLetters(
  letters: DeadLetters,
  write: (rows: ClickHouseRow[]) => Promise<void>,
): Promise<{ replayed: number; refused: Array<{ letter: DeadLetter; error: string }> }> {
  let replayed = 0;
  const refused: Array<{ letter: DeadLetter; error: string }> = [];
  for (const letter of await letters.list()) {
    try {
      await write([letter.row]);
      await letters.markReplayed(letter);
      replayed += 1;
    } catch (error) {
      refused.push({ letter, error: (error as Error).message });
    }
  }
  return { replayed, refused };
}
