import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FULL_READ_BYTES, GATHER_MS, GatheredReads, gathersReads, replicationSocket } from '../../src/source/read-gathering.ts';

/**
 * A socket as Node's readable side behaves: a read while paused is held (readableLength), and
 * resume() hands held reads on one by one while it stays flowing. The test makes the reads.
 */
class FakeSocket extends EventEmitter {
  flowing = true;
  private held: Buffer[] = [];
  constructor(
    readonly remoteFamily?: string,
    readonly encrypted?: boolean,
    readonly readableHighWaterMark = 0,
  ) {
    super();
  }
  get readableLength(): number {
    return this.held.reduce((sum, chunk) => sum + chunk.length, 0);
  }
  pause(): void {
    this.flowing = false;
  }
  resume(): void {
    this.flowing = true;
    while (this.flowing && this.held.length > 0) this.emit('data', this.held.shift());
  }
  read(bytes: number): void {
    if (this.flowing) this.emit('data', Buffer.alloc(bytes));
    else this.held.push(Buffer.alloc(bytes));
  }
}

/** A plain TCP fake socket, its reads gathered. */
function attached(socket = new FakeSocket('IPv4')) {
  const reads = new GatheredReads();
  reads.attach(socket);
  return { socket, reads };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('GatheredReads', () => {
  it('pauses for GATHER_MS after a read that emptied the socket, then reads again', () => {
    const { socket, reads } = attached();
    socket.read(700);
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(GATHER_MS - 0.5);
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(0.5);
    expect(socket.flowing).toBe(true);
    expect(reads.stats).toEqual({ reads: 1, shortReads: 1, heldReads: 0, bytes: 700 });
  });

  it('reads on at once after a full read (a backlog streams without pauses)', () => {
    const { socket, reads } = attached();
    for (let i = 0; i < 5; i++) socket.read(FULL_READ_BYTES);
    expect(socket.flowing).toBe(true);
    socket.read(FULL_READ_BYTES - 1);
    expect(socket.flowing).toBe(false);
    expect(reads.stats).toEqual({ reads: 6, shortReads: 1, heldReads: 0, bytes: 6 * FULL_READ_BYTES - 1 });
  });

  it('hands on everything Node read during a pause at once, and judges only the next fresh read', () => {
    const { socket, reads } = attached();
    socket.read(100);
    socket.read(200); // Node read these while paused: short, but they say nothing about the socket now
    socket.read(300);
    vi.advanceTimersByTime(GATHER_MS);
    expect(socket.readableLength).toBe(0);
    expect(socket.flowing).toBe(true); // all three handed on in one resume, no pause among them
    expect(reads.stats).toEqual({ reads: 3, shortReads: 1, heldReads: 2, bytes: 600 });
    socket.read(400); // a fresh short read: the socket is empty again
    expect(socket.flowing).toBe(false);
    expect(reads.stats.shortReads).toBe(2);
  });

  it('the end of a gathering pause never resumes a socket held for backpressure', () => {
    const { socket, reads } = attached();
    socket.read(100);
    reads.hold();
    vi.advanceTimersByTime(10 * GATHER_MS);
    expect(socket.flowing).toBe(false);
    reads.release();
    expect(socket.flowing).toBe(true);
  });

  it('a release during a gathering pause leaves the resume to the pause', () => {
    const { socket, reads } = attached();
    reads.hold();
    reads.release();
    socket.read(100);
    reads.hold();
    reads.release();
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(GATHER_MS);
    expect(socket.flowing).toBe(true);
  });

  it('what Node read while held for backpressure is handed on without a pause', () => {
    const { socket, reads } = attached();
    reads.hold();
    socket.read(100);
    socket.read(100);
    reads.release();
    expect(socket.flowing).toBe(true);
    expect(reads.stats).toEqual({ reads: 2, shortReads: 0, heldReads: 2, bytes: 200 });
  });

  it('a hold asked before the socket streams applies once it is attached', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.hold();
    reads.attach(socket);
    expect(socket.flowing).toBe(false);
    reads.release();
    expect(socket.flowing).toBe(true);
  });

  it('after detach, a pending pause resumes nothing and reads are no longer counted', () => {
    const { socket, reads } = attached();
    socket.read(100);
    reads.detach();
    vi.advanceTimersByTime(10 * GATHER_MS);
    expect(socket.flowing).toBe(false);
    socket.resume();
    socket.read(100);
    expect(reads.stats.reads).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('Unix, TLS and read-ahead sockets are not gathered, but still held for backpressure', () => {
    for (const socket of [new FakeSocket(undefined), new FakeSocket('IPv4', true), new FakeSocket('IPv4', false, 16_384)]) {
      const reads = new GatheredReads();
      reads.attach(socket);
      socket.read(100);
      expect(socket.flowing).toBe(true);
      expect(reads.stats.reads).toBe(0);
      reads.hold();
      expect(socket.flowing).toBe(false);
      reads.release();
      expect(socket.flowing).toBe(true);
    }
    expect(gathersReads(new FakeSocket('IPv6'))).toBe(true);
    expect(gathersReads(new FakeSocket(undefined))).toBe(false);
    expect(gathersReads(new FakeSocket('IPv4', true))).toBe(false);
    expect(gathersReads(new FakeSocket('IPv4', false, 16_384))).toBe(false);
  });

  it('the replication socket has no read-ahead: once paused, Node leaves further bytes in the kernel', () => {
    expect(replicationSocket().readableHighWaterMark).toBe(0);
  });
});
