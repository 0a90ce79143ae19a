/**
 * `runs-cdc status`: the replication slot, the publication and its tables' replica identity,
 * ClickHouse row counts per source table (FINAL and raw, so merge debt shows) and the latest
 * backfill jobs, with the problems that need a person; and how far the "TaskRun" -> task_run_v2
 * migration is (runs in both tables).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import { CheckpointStore } from '../backfill/checkpoints.ts';
import { firstLine } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import { SOURCE_TABLES } from '../schema/columns.ts';
import { runsTableIn } from '../schema/tables.ts';
import { hasV2Copy } from '../schema/version.ts';
import { pendingMigrations } from '../sink/migrations.ts';
import { readRows } from '../sink/read.ts';
import { IDENTITY_NAMES, readPublication, readReplicaIdentities, readSlot } from '../source/catalog.ts';
import { identityProblem, missingTableProblem, publicationProblems, slotProblems } from '../source/preflight.ts';
import { readSlotHealth, slotHealthProblems } from '../source/slot-health.ts';

export interface StatusReport {
  slot: {
    name: string;
    exists: boolean;
    active?: boolean;
    activePid?: number | null;
    plugin?: string;
    confirmedFlushLsn?: string | null;
    lagBytes?: number | null;
    lag?: string;
    walStatus?: string | null;
    /** WAL bytes from the slot's restart_lsn on, which Postgres must keep. */
    retainedWalBytes?: number | null;
    /** Seconds without a consumer, at least (0 while held; null when not known). */
    inactiveSeconds?: number | null;
  };
  publication: { name: string; exists: boolean };
  tables: Array<{ table: string; exists: boolean; published: boolean; replicaIdentity: string | null }>;
  /** Runs with a copy in both tables (the v2 copy is the run): the migration's progress. The
   * ClickHouse rows give the rest: live "TaskRun" runs there are the runs not migrated yet. */
  migration: { runsInBothTables: number | null; note?: string };
  clickhouse: {
    available: boolean;
    note?: string;
    rows?: Array<{ sourceTable: string; final: number; raw: number }>;
    backfills?: Array<{ jobId: string; status: string; rows: number; updatedAt: string }>;
  };
  /** What needs fixing; empty when all is well. */
  problems: string[];
}

function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** When an existing slot is a problem: no consumer for longer, or more WAL retained, than these. */
export interface SlotLimits {
  maxInactiveSeconds: number;
  maxRetainedWalBytes: number;
}

export async function gatherStatus(
  sql: pg.ClientBase,
  names: { slot: string; publication: string; database: string },
  clickhouse: ClickHouseClient | { unavailable: string },
  limits: SlotLimits,
): Promise<StatusReport> {
  const problems: string[] = [];
  const state = await readSlot(sql, names.slot);
  const slot: StatusReport['slot'] = { name: names.slot, exists: state !== undefined };
  if (state) {
    const { rows } = await sql.query<{ lag: string | null }>(
      'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag FROM pg_replication_slots WHERE slot_name = $1',
      [names.slot],
    );
    const lagBytes = rows[0]?.lag === null || rows[0]?.lag === undefined ? null : Number(rows[0].lag);
    Object.assign(slot, {
      active: state.active,
      activePid: state.activePid,
      plugin: state.plugin,
      confirmedFlushLsn: state.confirmedFlushLsn,
      lagBytes,
      lag: lagBytes === null ? 'unknown' : humanBytes(lagBytes),
      walStatus: state.walStatus,
    });
    problems.push(...(await slotProblems(sql, state, names.slot)));
    const health = await readSlotHealth(sql, names.slot, names.publication);
    Object.assign(slot, { retainedWalBytes: health.retainedWalBytes, inactiveSeconds: health.inactiveSeconds });
    problems.push(...slotHealthProblems(names.slot, health, limits, humanBytes));
  }
  const pub = await readPublication(sql, names.publication);
  if (!pub) problems.push(missingPublicationProblem(names.publication, state === undefined ? undefined : names.slot));
  else problems.push(...publicationProblems(pub, names.publication));
  const tables: StatusReport['tables'] = [];
  for (const [table, identity] of await readReplicaIdentities(sql)) {
    const published = pub?.tables.has(table) ?? false;
    tables.push({ table, exists: identity !== null, published, replicaIdentity: identity && (IDENTITY_NAMES[identity] ?? identity) });
    const problem = identity === null ? missingTableProblem(table) : identityProblem(table, identity);
    if (problem) problems.push(problem);
  }
  const bothExist = tables.length === 2 && tables.every((t) => t.exists);
  const clickhouseReport = await clickhouseStatus(clickhouse, names.database);
  if (!clickhouseReport.available) problems.push(clickhouseReport.note ?? 'ClickHouse is not available');
  if (!state) {
    // Once ClickHouse holds replicated rows, a new slot would start after a gap (replicate refuses it).
    const holdsRows = (clickhouseReport.rows ?? []).some((r) => r.raw > 0);
    problems.unshift(
      holdsRows
        ? `replication slot ${names.slot} does not exist while ClickHouse holds replicated rows, so the changes made since it went are missing there: run runs-cdc replicate --recreate-slot (it recreates the slot and repairs the gap)`
        : `replication slot ${names.slot} does not exist: start runs-cdc replicate (it creates it)`,
    );
  }
  return {
    slot,
    publication: { name: names.publication, exists: pub !== undefined },
    tables,
    migration: bothExist ? await migrationStatus(sql) : { runsInBothTables: null, note: 'a runs table is missing' },
    clickhouse: clickhouseReport,
    problems,
  };
}

/** Bounds the count of runs in both tables: status must stay quick on a primary under load. */
const MIGRATION_COUNT_TIMEOUT_MS = 3_000;

/**
 * Runs in both tables, counted in Postgres (an index probe into task_run_v2's primary key per
 * legacy row, given up after MIGRATION_COUNT_TIMEOUT_MS). ClickHouse cannot count them: both
 * copies share one sort key there, and merges keep only the v2 row (see schema/version.ts).
 */
async function migrationStatus(sql: pg.ClientBase): Promise<StatusReport['migration']> {
  try {
    await sql.query('BEGIN READ ONLY');
    await sql.query(`SET LOCAL statement_timeout = ${MIGRATION_COUNT_TIMEOUT_MS}`);
    const { rows } = await sql.query<{ n: string }>(`SELECT count(*)::text AS n FROM "TaskRun" t WHERE ${hasV2Copy('t')}`);
    return { runsInBothTables: Number(rows[0]?.n ?? 0) };
  } catch (error) {
    return { runsInBothTables: null, note: firstLine(error) };
  } finally {
    await sql.query('ROLLBACK').catch(() => {});
  }
}

/**
 * A dropped publication: with no slot, replicate creates both. A slot cannot decode past the drop
 * (pgoutput looks the publication up as of each change's position), so recreating the publication
 * does not revive it: the slot goes, and the changes made since it was last confirmed are copied
 * by a repair backfill.
 */
function missingPublicationProblem(publication: string, slot: string | undefined): string {
  if (slot === undefined) return `publication ${publication} does not exist: start runs-cdc replicate (it creates it)`;
  return `publication ${publication} does not exist, and replication slot ${slot} cannot stream past the point it was dropped (recreating the publication does not help): drop the slot (SELECT pg_drop_replication_slot('${slot}');), then run runs-cdc replicate --recreate-slot (it creates both and repairs the changes made meanwhile)`;
}

async function clickhouseStatus(
  clickhouse: ClickHouseClient | { unavailable: string },
  database: string,
): Promise<StatusReport['clickhouse']> {
  if ('unavailable' in clickhouse) return { available: false, note: clickhouse.unavailable };
  try {
    const pending = await pendingMigrations(clickhouse, database);
    if (pending.length > 0) {
      return {
        available: false,
        note: `ClickHouse database ${database} is missing migrations ${pending.join(', ')}: run runs-cdc migrate`,
      };
    }
    const count = async (from: string) => {
      const rows = await readRows<{ source_table: string; n: string }>(clickhouse, {
        query: `SELECT source_table, count() AS n FROM ${runsTableIn(database)} ${from} GROUP BY source_table`,
      });
      return new Map(rows.map((r) => [r.source_table, Number(r.n)]));
    };
    // Raw counts every stored version and tombstone; FINAL the live runs. The difference is merge debt.
    const raw = await count('');
    const final = await count('FINAL WHERE _is_deleted = 0');
    const rows = SOURCE_TABLES.map((t) => ({ sourceTable: t, final: final.get(t) ?? 0, raw: raw.get(t) ?? 0 }));
    const store = new CheckpointStore(clickhouse, database, { initialDelayMs: 100, maxDelayMs: 100, maxRetries: 0 }, silentLogger);
    const backfills = (await store.listJobs(5)).map((j) => ({
      jobId: j.jobId,
      status: j.status,
      rows: j.rowsCopied,
      updatedAt: j.updatedAt,
    }));
    return { available: true, rows, backfills };
  } catch (error) {
    return { available: false, note: `ClickHouse could not be read: ${firstLine(error)}` };
  }
}
