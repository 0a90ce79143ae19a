/**
 * The `_version` of a replicated row, the column ReplacingMergeTree keeps the highest of.
 *
 * version = commit LSN << 64 | ordinal of the change within its transaction (1, 2, ...).
 * Commit LSNs order transactions as Postgres committed them (two transactions that touch one row
 * are serialised by its row lock, so the later commit has the larger LSN); the ordinal makes a
 * later change in the same transaction win. UInt128 holds both without overflow for any LSN.
 * Version 0 is below every replicated change: the backfill's rows use it, so CDC always wins.
 * A repair backfill's rows use snapshotVersion (see src/backfill/version-rule.ts).
 */
import type { Lsn } from '../lsn.ts';

export const BACKFILL_VERSION = 0n;
const ORDINAL_BITS = 64n;

export function changeVersion(commitLsn: Lsn, ordinal: number): bigint {
  if (!Number.isSafeInteger(ordinal) || ordinal < 1) throw new RangeError(`bad change ordinal ${ordinal}`);
  return (commitLsn << ORDINAL_BITS) | BigInt(ordinal);
}

export function versionCommitLsn(version: bigint): Lsn {
  return version >> ORDINAL_BITS;
}

/**
 * The version of rows read in a snapshot exported at `consistentPoint`: ordinal 0 of a commit at
 * that LSN. Transactions in the snapshot committed before it (lower commit LSN, lower version);
 * every later one is decoded with commit LSN >= consistentPoint and ordinal >= 1 (higher version).
 */
export function snapshotVersion(consistentPoint: Lsn): bigint {
  return consistentPoint << ORDINAL_BITS;
}
