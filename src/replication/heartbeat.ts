/**
 * Heartbeats: a logical message written into the WAL now and then (--heartbeat-interval-ms), on
 * an ordinary connection of its own, so a slot whose tables are idle still sees a change of its
 * database and can advance.
 */
import pg from 'pg';
import type { Logger } from '../logger.ts';
import { postgresConfig } from '../source/connection.ts';

export interface Heartbeat {
  stop(): Promise<void>;
}

/** Start writing heartbeats every `intervalMs` (none when undefined); `onBeat` counts them. */
export function startHeartbeat(databaseUrl: string, intervalMs: number | undefined, log: Logger, onBeat: () => void): Heartbeat {
  if (intervalMs === undefined) return { stop: async () => {} };
  const pool = new pg.Pool(postgresConfig(databaseUrl, { max: 1, application_name: 'runs-cdc heartbeat' }));
  pool.on('error', () => {});
  const timer = setInterval(() => {
    pool
      .query(`SELECT pg_logical_emit_message(false, 'runs-cdc', 'heartbeat')`)
      .then(onBeat, (error: Error) =>
        log.warn({ err: error.message }, 'could not write a heartbeat; the slot may advance less while tables are idle'),
      );
  }, intervalMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await pool.end().catch(() => {});
    },
  };
}
