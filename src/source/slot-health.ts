/**
 * How long a slot has gone without a consumer and how much WAL it keeps: what `status` compares
 * with --slot-max-inactive-seconds and --slot-max-retained-wal. A slot nobody reads makes
 * Postgres keep every WAL segment from its restart_lsn on, until the disk fills or
 * max_slot_wal_keep_size invalidates it (and ClickHouse misses changes).
 */
import type pg from 'pg';

export interface SlotHealth {
  /** Bytes of WAL from the slot's restart_lsn to the server's current position. */
  retainedWalBytes: number | null;
  /**
   * Seconds the slot has gone without a consumer, at least; 0 while one holds it, null when not
   * known (nothing is waiting in the slot, or it could not be read).
   */
  inactiveSeconds: number | null;
  /** Where inactiveSeconds comes from. */
  inactiveSource: 'active' | 'inactive_since' | 'oldest waiting commit' | 'unknown';
}

/**
 * Postgres 17 records when a slot was released (`inactive_since`). Before 17 the bound is the
 * commit time of the oldest transaction still waiting in the slot (from pgoutput's BEGIN, which
 * carries it): no consumer has taken it since, so the slot has had none for at least that long.
 * Peeking decodes from the slot's restart_lsn up to that first transaction and moves nothing; it
 * fails while a process holds the slot, which then is active anyway. It may read far when the
 * backlog is mostly other tables' WAL, so it gets PEEK_TIMEOUT and is unknown past it (the retained
 * WAL check still sees such a backlog).
 */
export async function readSlotHealth(sql: pg.ClientBase, slot: string, publication: string): Promise<SlotHealth> {
  const { rows } = await sql.query<{ active: boolean; retained: string | null; inactive_for: string | null }>(
    `SELECT active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained,
            extract(epoch FROM now() - (to_jsonb(s) ->> 'inactive_since')::timestamptz)::text AS inactive_for
       FROM pg_replication_slots s WHERE slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return { retainedWalBytes: null, inactiveSeconds: null, inactiveSource: 'unknown' };
  const retainedWalBytes = row.retained === null ? null : Number(row.retained);
  if (row.active) return { retainedWalBytes, inactiveSeconds: 0, inactiveSource: 'active' };
  if (row.inactive_for !== null) return { retainedWalBytes, inactiveSeconds: Number(row.inactive_for), inactiveSource: 'inactive_since' };
  const waited = await oldestWaitingCommitAge(sql, slot, publication);
  return waited === undefined
    ? { retainedWalBytes, inactiveSeconds: null, inactiveSource: 'unknown' }
    : { retainedWalBytes, inactiveSeconds: waited, inactiveSource: 'oldest waiting commit' };
}

/** How long `status` may spend decoding the slot to find its oldest waiting commit. */
const PEEK_TIMEOUT = '5s';

/** Seconds since the oldest transaction waiting in the slot committed; undefined when none waits. */
async function oldestWaitingCommitAge(sql: pg.ClientBase, slot: string, publication: string): Promise<number | undefined> {
  await sql.query('BEGIN');
  try {
    await sql.query(`SET LOCAL statement_timeout = '${PEEK_TIMEOUT}'`);
    // pgoutput's BEGIN: 'B', final LSN (8 bytes), commit time (8 bytes, µs since 2000-01-01 UTC), xid.
    // upto_nchanges = 1 stops decoding after the first transaction that produced output.
    const { rows } = await sql.query<{ waited: string }>(
      `SELECT extract(epoch FROM now() - (timestamptz '2000-01-01 00:00:00+00'
                + ('x' || encode(substr(data, 10, 8), 'hex'))::bit(64)::bigint * interval '1 microsecond'))::text AS waited
         FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, 'proto_version', '1', 'publication_names', $2)
        WHERE substr(data, 1, 1) = 'B'
        LIMIT 1`,
      [slot, publication],
    );
    return rows[0] ? Number(rows[0].waited) : undefined;
  } catch {
    // Held by a process meanwhile, too slow, or not decodable (a dropped publication is reported on its own).
    return undefined;
  } finally {
    await sql.query('ROLLBACK');
  }
}

/** What `status` says about the slot's consumer and retained WAL; empty when both are within limits. */
export function slotHealthProblems(
  slot: string,
  health: SlotHealth,
  limits: { maxInactiveSeconds: number; maxRetainedWalBytes: number },
  humanBytes: (bytes: number) => string,
): string[] {
  const problems: string[] = [];
  if (health.inactiveSeconds !== null && health.inactiveSeconds > limits.maxInactiveSeconds) {
    problems.push(
      `replication slot ${slot} has had no consumer for ${humanSeconds(health.inactiveSeconds)} (over --slot-max-inactive-seconds ${limits.maxInactiveSeconds}): its changes are not reaching ClickHouse and Postgres keeps their WAL; start runs-cdc replicate (its logs say why it stopped), or drop the slot if replication is retired: SELECT pg_drop_replication_slot('${slot}');`,
    );
  }
  if (health.retainedWalBytes !== null && health.retainedWalBytes > limits.maxRetainedWalBytes) {
    problems.push(
      `replication slot ${slot} retains ${humanBytes(health.retainedWalBytes)} of WAL (over --slot-max-retained-wal ${limits.maxRetainedWalBytes} bytes): Postgres cannot remove it until runs-cdc replicate confirms those changes; make sure replicate is running and keeping up (status shows its lag), and watch the disk: past max_slot_wal_keep_size the slot is invalidated and ClickHouse misses changes`,
    );
  }
  return problems;
}

function humanSeconds(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
