/**
 * One replication connection at a time, for the supervisor: opens the stream, runs heartbeats
 * beside it, hands items on, and turns how it ended into the supervisor's cases: a stop (resolves),
 * the slot taken by another process (SlotInUseError), the connection lost (ConnectionLostError),
 * or the daemon's own failure (rethrown).
 */
import type { Config } from '../config.ts';
import { StreamError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { formatLsn, type Lsn } from '../lsn.ts';
import { ReplicationStream, type StreamItem } from '../source/stream.ts';
import type { PausableSource } from './applier.ts';
import { startHeartbeat } from './heartbeat.ts';

/** SQLSTATE of "replication slot ... is active for PID ...". */
const OBJECT_IN_USE = '55006';
/** SQLSTATE of "publication ... does not exist", raised by pgoutput while decoding a change. */
const UNDEFINED_OBJECT = '42704';

/** Another process took the slot between the check and START_REPLICATION: stand by and retry. */
export class SlotInUseError extends StreamError {
  override readonly retryable = true;
}

/**
 * pgoutput cannot find the publication at a change's WAL position (it was dropped while the slot
 * had changes after it): every reconnect fails at that change, and recreating the publication does
 * not help, because the slot decodes with the catalog as of that position. Not retryable.
 */
export class PublicationUnusableError extends StreamError {}

/** The replication connection dropped (walsender terminated, server restarted, network). */
export class ConnectionLostError extends StreamError {
  override readonly retryable = true;
}

export interface ConnectionOptions {
  databaseUrl: string;
  settings: Pick<Config, 'slot' | 'publication' | 'statusIntervalMs' | 'heartbeatIntervalMs'>;
  log: Logger;
  confirmedLsn: () => Lsn;
  onStart: () => void;
  onItem: (item: StreamItem) => void;
  onHeartbeat: () => void;
  /** Stopping or killed: an end of the stream is then no loss. */
  halting: () => boolean;
  /** The daemon's fatal error, if any: it wins over how the stream ended. */
  failure: () => Error | undefined;
}

export class ReplicationConnection implements PausableSource {
  private stream: ReplicationStream | undefined;
  private failStream: ((error: Error) => void) | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  /** Stream until stopped (resolves) or the connection ends otherwise (rejects, as above). */
  async run(): Promise<void> {
    const { settings, log, failure, halting } = this.options;
    const stream = new ReplicationStream(
      {
        connectionString: this.options.databaseUrl,
        slot: settings.slot,
        publication: settings.publication,
        confirmedLsn: this.options.confirmedLsn,
        statusIntervalMs: settings.statusIntervalMs,
        onStart: this.options.onStart,
      },
      this.options.onItem,
    );
    this.stream = stream;
    const failed = new Promise<never>((_, reject) => {
      this.failStream = reject;
    });
    log.info({ slot: settings.slot, publication: settings.publication, from: formatLsn(this.options.confirmedLsn()) }, 'streaming changes');
    const streaming = stream.run();
    const heartbeat = startHeartbeat(this.options.databaseUrl, settings.heartbeatIntervalMs, log, this.options.onHeartbeat);
    try {
      await Promise.race([streaming, failed]);
    } catch (error) {
      const fatal = failure();
      if (fatal) throw fatal;
      if (halting()) return;
      const { code, message } = error as { code?: string; message: string };
      if (code === OBJECT_IN_USE) throw new SlotInUseError(message);
      if (code === UNDEFINED_OBJECT && /publication/i.test(message)) {
        throw new PublicationUnusableError(
          `the slot cannot decode past this point (${message}): publication ${settings.publication} was dropped while slot ${settings.slot} still had changes after it, and recreating it does not help; recover with SELECT pg_drop_replication_slot('${settings.slot}'); then runs-cdc replicate --recreate-slot (creates the publication and a new slot, then repairs ClickHouse)`,
        );
      }
      throw new ConnectionLostError(`replication connection failed: ${message}`);
    } finally {
      // However the attempt ended, its connection is closed: a failed START_REPLICATION leaves the
      // walsender idle but connected, holding one of max_wal_senders.
      await stream.stop();
      await heartbeat.stop();
    }
    const fatal = failure();
    if (fatal) throw fatal;
    // The stream ended without being asked to: the server closed the connection.
    if (!halting()) throw new ConnectionLostError('the replication connection was closed by the server');
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  sendStatus(lsn: Lsn): void {
    this.stream?.sendStatus(lsn);
  }

  /** Close the stream (no more status updates from it) and end run() with `reason`. */
  async close(reason: Error): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    await stream?.stop();
    this.failStream?.(reason);
  }

  /** Fail run() with `reason` now; the stream closes in the background. */
  abort(reason: Error): void {
    void this.stream?.stop();
    this.failStream?.(reason);
  }

  /** The connection is gone: forget its stream. */
  forget(): void {
    this.stream = undefined;
  }
}
