/**
 * The `_version` of a replicated row, the column ReplacingMergeTree keeps the highest of.
 *
 * version = table rank << 127 | commit LSN << 64 | ordinal of the change within its transaction.
 * Commit LSNs order transactions as Postgres committed them (two transactions that touch one row
 * are serialised by its row lock, so the later commit has the larger LSN); the ordinal makes a
 * later change in the same transaction win. UInt128 holds all three (an LSN below 2^63, i.e.
 * 8 EiB of WAL, leaves the top bit free). Version 0 is below every replicated change: the
 * backfill's rows use it, so CDC always wins. A repair backfill's rows use snapshotVersion (see
 * src/backfill/version-rule.ts).
 *
 * The table rank: one run, two tables. The platform migrates a run by copying it from "TaskRun"
 * into task_run_v2 with the same id (and sort key); from then on the v2 copy is the run, and
 * whatever happens to the legacy copy (updates, deletes, TRUNCATE, replays, a backfill) must
 * neither hide nor overwrite it, while deleting the v2 copy deletes the run. Why a rank in the
 * version, not source_table in the sort key plus a read rule: with the rank both copies keep
 * sharing one sort key, so ReplacingMergeTree still holds one row per run and `FINAL` +
 * `_is_deleted = 0` stays the only read rule; every query and FINAL cost what they did. The rank
 * is applied where rows are built (buildRow, tombstoneOf), from the row's source table, so the
 * daemon, both backfill modes and verify --repair carry it without knowing about it:
 * - any task_run_v2 row (insert, update, tombstone, backfill 0, snapshot) beats any "TaskRun" row
 *   on the same key: a late legacy update or a legacy delete (or TRUNCATE) loses to the v2 copy,
 *   and a v2 tombstone keeps the stale legacy copy hidden;
 * - within one table the order is the LSN order above, exactly as before.
 * What the rank cannot do alone: a legacy row written under a key the v2 copy does not have (the
 * legacy copy's createdAt/organization/project/environment moved after the copy, or a legacy row
 * arriving for a run whose v2 copy moved away). Such a row is written as a tombstone at
 * LEGACY_SUPERSEDED_VERSION instead (supersededLegacyTombstone in row.ts; the sink checks
 * ClickHouse for every live legacy row it writes, the backfill and repair check Postgres).
 *
 * What it costs: queries and FINAL nothing (same key, same rule; bench:queries with 1 in 10
 * legacy runs copied differs from without by noise). Each insert holding live legacy rows makes
 * one lookup (`run_id IN (...)`, no index on run_id: a scan of two columns; on chDB, 2 busy
 * cores: 6 ms for 1,000 ids over 1M stored rows, 36 ms for 10,000; 37 / 81 ms over 5M), so
 * legacy-heavy traffic pays a read per flush; inserts of v2 rows and tombstones pay nothing. The backfill
 * probes task_run_v2's primary key once per legacy row it reads.
 * What it assumes: a migrated run's v2 copy starts on its legacy row's key (the copy keeps
 * createdAt, organization, project, environment), and "migrated" is for good (a deleted v2 copy
 * deletes the run). Limits: a v2 copy made under another key than its live legacy row (the copy
 * changes a key column, or races a legacy key move) shows the run twice until the legacy copy is
 * next written or verify --repair runs; a v2 copy deleted before the slot existed is unknown to
 * ClickHouse, so its legacy copy is backfilled as a run. Existing v2 rows written before the rank
 * need one `backfill --table task_run_v2 --mode repair`.
 */
import type { Lsn } from '../lsn.ts';
import type { SourceTable } from './columns.ts';

export const BACKFILL_VERSION = 0n;
const ORDINAL_BITS = 64n;
/** The bit ranking task_run_v2 above "TaskRun". */
const TABLE_RANK_BIT = 1n << 127n;
const LSN_MASK = (1n << 63n) - 1n;

/**
 * The highest version a "TaskRun" row can have, below every task_run_v2 version (even the
 * backfill's 0 with the rank): a tombstone at it hides every legacy row on its key for good and
 * never hides a v2 row. Written for a legacy row of a run that has a task_run_v2 copy.
 */
export const LEGACY_SUPERSEDED_VERSION = TABLE_RANK_BIT - 1n;

export function changeVersion(commitLsn: Lsn, ordinal: number): bigint {
  if (!Number.isSafeInteger(ordinal) || ordinal < 1) throw new RangeError(`bad change ordinal ${ordinal}`);
  if (commitLsn > LSN_MASK) throw new RangeError(`commit LSN ${commitLsn} is above 2^63, which versions cannot hold`);
  return (commitLsn << ORDINAL_BITS) | BigInt(ordinal);
}

/** The version a row of `table` is stored with: task_run_v2 ranks above every "TaskRun" row. */
export function rankedVersion(table: SourceTable | string, version: bigint): bigint {
  return table === 'task_run_v2' ? version | TABLE_RANK_BIT : version;
}

export function versionCommitLsn(version: bigint): Lsn {
  return (version >> ORDINAL_BITS) & LSN_MASK;
}

/**
 * The version of rows read in a snapshot exported at `consistentPoint`: ordinal 0 of a commit at
 * that LSN. Transactions in the snapshot committed before it (lower commit LSN, lower version);
 * every later one is decoded with commit LSN >= consistentPoint and ordinal >= 1 (higher version).
 */
export function snapshotVersion(consistentPoint: Lsn): bigint {
  return consistentPoint << ORDINAL_BITS;
}

/**
 * Postgres SQL true when the legacy row `legacyRow` (`"TaskRun"` or an alias of it) has a
 * task_run_v2 copy: that copy is the run (the rule above), wherever a run is read from Postgres.
 */
export function hasV2Copy(legacyRow = '"TaskRun"'): string {
  return `EXISTS (SELECT 1 FROM "task_run_v2" v2 WHERE v2."id" = ${legacyRow}."id")`;
}
