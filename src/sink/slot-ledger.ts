/** The slot records of replication/slot-guard.ts in ClickHouse (`replication_slots`, migration 005). */
import type { ClickHouseClient } from '@clickhouse/client';
import { formatLsn, parseLsn } from '../lsn.ts';
import type { SlotLedger, SlotRecord } from '../replication/slot-guard.ts';
import { assertIdentifier, runsTableIn } from '../schema/tables.ts';
import { utcTimestamp } from '../utc.ts';
import { readRows } from './read.ts';

interface SlotRow {
  slot: string;
  epoch: number;
  created_lsn: string;
  repair_pending: boolean | number;
  revision: string;
}

export class ClickHouseSlotLedger implements SlotLedger {
  private readonly table: string;
  private readonly runs: string;
  /** The revision of the newest record read or written (ReplacingMergeTree keeps the highest). */
  private revision = 0;

  constructor(
    private readonly client: ClickHouseClient,
    database: string,
  ) {
    assertIdentifier(database, 'ClickHouse database');
    this.table = `${database}.replication_slots`;
    this.runs = runsTableIn(database);
  }

  async read(slot: string): Promise<SlotRecord | undefined> {
    const [row] = await readRows<SlotRow>(this.client, {
      query: `SELECT slot, epoch, created_lsn, repair_pending, revision FROM ${this.table} FINAL WHERE slot = {slot:String}`,
      query_params: { slot },
    });
    if (!row) return undefined;
    this.revision = Math.max(this.revision, Number(row.revision));
    return {
      slot: row.slot,
      epoch: Number(row.epoch),
      createdLsn: parseLsn(row.created_lsn),
      repairPending: row.repair_pending === true || Number(row.repair_pending) === 1,
    };
  }

  async write(record: SlotRecord): Promise<void> {
    await this.read(record.slot); // the revision to supersede
    this.revision += 1;
    await this.client.insert({
      table: this.table,
      values: [
        {
          slot: record.slot,
          epoch: record.epoch,
          created_lsn: formatLsn(record.createdLsn),
          created_at: utcTimestamp(),
          repair_pending: record.repairPending,
          revision: this.revision,
        },
      ],
      format: 'JSONEachRow',
    });
  }

  async holdsRows(): Promise<boolean> {
    const rows = await readRows<{ one: number }>(this.client, { query: `SELECT 1 AS one FROM ${this.runs} LIMIT 1` });
    return rows.length > 0;
  }
}
