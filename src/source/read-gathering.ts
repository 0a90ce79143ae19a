/**
 * The replication socket's reads, gathered. The walsender writes every change as its own TCP
 * segment (it flushes after each message, and Postgres sets TCP_NODELAY), so a reader that keeps
 * up reads one or two changes at a time, and both processes pay per read: a syscall, a wake-up
 * and an ACK each. A read shorter than Node's read size emptied the socket; reading then pauses
 * for GATHER_MS, and the next read takes what arrived meanwhile. A full read reads on at once, so
 * a backlog streams without pauses.
 *
 * For the pause to leave the bytes in the kernel, only a socket without read-ahead is gathered
 * (replicationSocket): a paused Node socket otherwise goes on reading every segment into its own
 * buffer and hands them back one per resume, which made changes wait milliseconds (the first
 * version did). Without read-ahead Node reads one more segment at most, and what it read while
 * paused is handed on at once and judges nothing: only a fresh read can say the socket is empty.
 * A change waits about GATHER_MS more, a little more when timers fire late (a scratch harness:
 * p99 1.3-3.8 ms against 0.2-3.3 ungathered). On 2 cores, raw decode of a 100k-run backlog went
 * from 107-116k rows/s (6 runs) to 122-184k (12 runs, 6 of them alternated with those), with
 * less CPU per row in Postgres (8.3-8.8 µs to 5.2-7.8) and about half in this process
 * (bench/HISTORY.md, sixth round).
 *
 * Only plain TCP is gathered. A Unix socket holds too little to gather into (a raw decode fell
 * to ~27k rows/s), and is cheap to read per change anyway; a TLS socket hands out records of at
 * most 16 KiB, every one of which would look short.
 *
 * The socket also pauses for backpressure (hold/release): it reads only while neither holds it.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';

/** Node reads a socket into 64 KiB buffers: a shorter read found nothing more waiting. */
export const FULL_READ_BYTES = 64 * 1024;
/** How long reading pauses after a read that emptied the socket. */
export const GATHER_MS = 1;

export interface ReadableSocket {
  pause(): void;
  resume(): void;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  /** net.Socket's: IPv4 or IPv6 over TCP, undefined over a Unix socket. */
  readonly remoteFamily?: string | undefined;
  /** tls.TLSSocket's: true. */
  readonly encrypted?: boolean;
  /** Bytes Node read and holds, not handed on yet (a paused socket's). */
  readonly readableLength: number;
  /** How much Node reads ahead into its own buffer while paused: 0 for replicationSocket. */
  readonly readableHighWaterMark: number;
}

/**
 * The replication connection's socket (pg's `stream` option): no read-ahead, so once paused Node
 * reads one more segment at most, and the rest waits in the kernel for one large read. (Held for
 * backpressure, it then sees no FIN or reset until released; status updates still go out.)
 */
export function replicationSocket(): Socket {
  // net.Socket hands its options on to stream.Duplex (Node 20 and 24); @types/node leaves this one out.
  const options: SocketConstructorOpts & { readableHighWaterMark: number } = { readableHighWaterMark: 0 };
  return new Socket(options);
}

/** Whether reads of `socket` are gathered: plain TCP without read-ahead only (above). */
export function gathersReads(socket: ReadableSocket): boolean {
  const tcp = socket.remoteFamily === 'IPv4' || socket.remoteFamily === 'IPv6';
  return tcp && socket.encrypted !== true && socket.readableHighWaterMark === 0;
}

export interface ReadStats {
  /** Reads of the socket (data events). */
  reads: number;
  /** Fresh reads shorter than FULL_READ_BYTES: they emptied the socket, and a pause followed. */
  shortReads: number;
  /** Reads Node made while the socket was paused, handed on when it resumed. */
  heldReads: number;
  bytes: number;
}

export class GatheredReads {
  private socket: ReadableSocket | undefined;
  private held = false;
  private gathering: NodeJS.Timeout | undefined;
  /** Handing on what Node read while the socket was paused. */
  private draining = false;
  readonly stats: ReadStats = { reads: 0, shortReads: 0, heldReads: 0, bytes: 0 };
  private readonly onData = (chunk: Buffer) => this.read(chunk.length);

  /** Take over the connection's socket once it streams: gathered if plain TCP; a hold already asked applies. */
  attach(socket: ReadableSocket): void {
    this.detach();
    this.socket = socket;
    if (gathersReads(socket)) socket.on('data', this.onData);
    if (this.held) socket.pause();
  }

  /** Stop reading until release() (backpressure). */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.socket?.pause();
  }

  /** Read again, unless a gathering pause is on (its end resumes). */
  release(): void {
    if (!this.held) return;
    this.held = false;
    if (!this.gathering) this.resume();
  }

  /** Forget the socket and any pause in progress (the connection is closing). */
  detach(): void {
    clearTimeout(this.gathering);
    this.gathering = undefined;
    this.draining = false;
    this.socket?.off('data', this.onData);
    this.socket = undefined;
  }

  private resume(): void {
    const socket = this.socket;
    if (!socket) return;
    this.draining = socket.readableLength > 0;
    socket.resume();
  }

  private read(bytes: number): void {
    const socket = this.socket;
    if (!socket) return;
    this.stats.reads += 1;
    this.stats.bytes += bytes;
    if (this.draining) {
      this.stats.heldReads += 1;
      this.draining = socket.readableLength > 0;
      return;
    }
    if (bytes >= FULL_READ_BYTES || this.gathering) return;
    this.stats.shortReads += 1;
    socket.pause();
    this.gathering = setTimeout(() => {
      this.gathering = undefined;
      if (!this.held) this.resume();
    }, GATHER_MS);
  }
}
