/**
 * The pgoutput replication stream, as an ordered sequence of items for the daemon: decoded
 * messages and server keepalives, in the order Postgres sent them.
 *
 * pg-logical-replication's own acknowledgement is off entirely (`auto: false` and
 * `timeoutSeconds: 0`; with `auto: false` alone its timer still acks the last *received* LSN).
 * Its flow-control mode is not used either: it queues messages but emits keepalives at once, so a
 * keepalive could overtake data still queued; here both go to one callback in wire order.
 */
import { LogicalReplicationService, type Pgoutput, PgoutputPlugin } from 'pg-logical-replication';
import { formatLsn, type Lsn, parseLsn } from '../lsn.ts';
import { postgresConfig } from './connection.ts';
import { GatheredReads, type ReadableSocket, type ReadStats, replicationSocket } from './read-gathering.ts';
import { readTuplesFromWire } from './wire-tuples.ts';

export type StreamItem =
  | { kind: 'message'; lsn: Lsn; message: Pgoutput.Message }
  /** Answered here when the server asks; the daemon uses the WAL end to advance an idle slot. */
  | { kind: 'keepalive'; walEnd: Lsn };

export interface StreamOptions {
  connectionString: string;
  slot: string;
  publication: string;
  /** The LSN confirmed so far: what keepalive replies and periodic status updates report. */
  confirmedLsn: () => Lsn;
  /** Send a status update this often even unasked, so a paused reader is not timed out. */
  statusIntervalMs: number;
  /** Postgres accepted START_REPLICATION: changes flow from here on. */
  onStart?: () => void;
}

export class ReplicationStream {
  private readonly service: LogicalReplicationService;
  private statusTimer: NodeJS.Timeout | undefined;
  /** The socket's reads: gathered, and held for backpressure (read-gathering.ts). */
  private readonly reads = new GatheredReads();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly options: StreamOptions,
    onItem: (item: StreamItem) => void,
  ) {
    this.service = new LogicalReplicationService(
      postgresConfig(options.connectionString, { application_name: 'runs-cdc', stream: replicationSocket }),
      {
        acknowledge: { auto: false, timeoutSeconds: 0 },
        flowControl: { enabled: false },
      },
    );
    this.service.on('data', (lsn: string, message: Pgoutput.Message) => {
      onItem({ kind: 'message', lsn: parseLsn(lsn), message });
    });
    this.service.on('heartbeat', (lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) this.sendStatus(options.confirmedLsn());
      onItem({ kind: 'keepalive', walEnd: parseLsn(lsn) });
    });
    // Report the confirmed position as soon as streaming starts: after a reconnect it may be
    // ahead of the slot (confirmed while no connection could carry it), and neither replayed
    // commits nor keepalives at that same position would report it before the periodic update.
    this.service.on('start', () => {
      const socket = this.socket();
      if (socket) this.reads.attach(socket);
      this.sendStatus(options.confirmedLsn());
      options.onStart?.();
    });
    // Errors also reject subscribe(), which is where the daemon handles them.
    this.service.on('error', () => {});
  }

  /** Streams until stop() or a connection failure; resolves on stop, rejects on failure. */
  async run(): Promise<void> {
    // Tuples stay the bytes Postgres sent (see wire-tuples.ts).
    const plugin = readTuplesFromWire(new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.options.publication] }));
    this.statusTimer = setInterval(() => this.sendStatus(this.options.confirmedLsn()), this.options.statusIntervalMs);
    try {
      // Start from the slot's confirmed position: 0/0 means "where the slot is".
      await this.service.subscribe(plugin, this.options.slot, '0/0');
    } finally {
      clearInterval(this.statusTimer);
    }
  }

  /**
   * Tell Postgres everything before `lsn` is durable downstream: confirmed_flush_lsn becomes
   * exactly `lsn` (a commit's end LSN, or a keepalive's WAL end). The library reports its argument
   * + 1, so it is given `lsn - 1`: reporting one byte more could skip a transaction whose commit
   * record starts exactly at `lsn` after a restart.
   */
  sendStatus(lsn: Lsn): void {
    if (lsn <= 0n || this.service.isStop()) return;
    // On a connection that just dropped this rejects; the next connection reports it at its start.
    this.service.acknowledge(formatLsn(lsn - 1n)).catch(() => {});
  }

  /** Stop reading from the socket (backpressure); items already received still arrive. */
  pause(): void {
    this.reads.hold();
  }

  resume(): void {
    this.reads.release();
  }

  /** How a gathered socket was read: reads, short ones (each followed by a pause), those Node held while paused, bytes. */
  get readStats(): Readonly<ReadStats> {
    return this.reads.stats;
  }

  /** Close the connection; idempotent (every caller waits for the same close). */
  stop(): Promise<void> {
    clearInterval(this.statusTimer);
    this.reads.detach();
    this.stopping ??= this.service.destroy().then(() => {});
    return this.stopping;
  }

  /** The library keeps the connection private; it pauses the same socket in its own flow control. */
  private socket(): ReadableSocket | undefined {
    return (this.service as unknown as { _connection?: { stream?: ReadableSocket } })._connection?.stream;
  }
}
