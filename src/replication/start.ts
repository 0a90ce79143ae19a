/**
 * Run the daemon in this process, for callers that drive a workload beside it (demo, benchmarks,
 * tests). The `replicate` command runs it directly instead, until a signal.
 */
import type pg from 'pg';
import type { Logger } from '../logger.ts';
import type { RunsStore } from '../sink/runs-sink.ts';
import type { Routing } from '../sink/targets.ts';
import { currentWalLsn } from '../source/catalog.ts';
import { type DaemonObserver, type DaemonSettings, ReplicationDaemon, type SlotGuard } from './daemon.ts';

export interface Replication {
  daemon: ReplicationDaemon;
  /** The promise of daemon.run(): resolves after stop(), rejects on a fatal error. */
  running: Promise<void>;
  /** Resolves once everything `sql`'s server has committed so far is in ClickHouse and confirmed. */
  caughtUp(sql: pg.ClientBase): Promise<void>;
  /** Graceful stop; resolves when the daemon has stopped (or already failed). */
  stop(): Promise<void>;
}

/** Start the daemon; resolves once it streams, rejects if preflight fails. */
export async function startReplication(
  databaseUrl: string,
  settings: DaemonSettings,
  table: RunsStore,
  log: Logger,
  observer?: DaemonObserver,
  routing?: Routing,
  slotGuard?: SlotGuard,
): Promise<Replication> {
  const daemon = new ReplicationDaemon(databaseUrl, settings, table, log, observer, routing, slotGuard);
  const running = daemon.run();
  running.catch(() => {}); // reported through `running`, waitForConfirmed and stop()
  await Promise.race([daemon.ready, running]);
  return {
    daemon,
    running,
    caughtUp: async (sql) => daemon.waitForConfirmed(await currentWalLsn(sql)),
    stop: async () => {
      await daemon.stop();
      await running.catch(() => {});
    },
  };
}
