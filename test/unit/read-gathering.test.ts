import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FULL_READ_BYTES, GATHER_MS, GatheredReads, gathersReads } from '../../src/source/read-gathering.ts';

/** A socket that records whether it reads (flowing) and lets the test hand it reads. */
class FakeSocket extends EventEmitter {
  flowing = true;
  constructor(
    readonly remoteFamily?: string,
    readonly encrypted?: boolean,
  ) {
    super();
  }
  pause(): void {
    this.flowing = false;
  }
  resume(): void {
    this.flowing = true;
  }
  read(bytes: number): void {
    this.emit('data', Buffer.alloc(bytes));
  }
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('GatheredReads', () => {
  it('pauses for GATHER_MS after a read that emptied the socket, then reads again', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    socket.read(700);
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(GATHER_MS - 0.5);
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(0.5);
    expect(socket.flowing).toBe(true);
    expect(reads.stats).toEqual({ reads: 1, shortReads: 1, pauses: 1, bytes: 700 });
  });

  it('reads on at once after a full read (a backlog streams without pauses)', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    for (let i = 0; i < 5; i++) socket.read(FULL_READ_BYTES);
    expect(socket.flowing).toBe(true);
    socket.read(FULL_READ_BYTES - 1);
    expect(socket.flowing).toBe(false);
    expect(reads.stats).toEqual({ reads: 6, shortReads: 1, pauses: 1, bytes: 6 * FULL_READ_BYTES - 1 });
  });

  it('a short read during a pause (bytes Node had buffered) starts no second pause', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    socket.read(100);
    vi.advanceTimersByTime(GATHER_MS / 2);
    socket.read(200);
    vi.advanceTimersByTime(GATHER_MS / 2);
    expect(socket.flowing).toBe(true);
    expect(reads.stats).toEqual({ reads: 2, shortReads: 2, pauses: 1, bytes: 300 });
  });

  it('the end of a gathering pause never resumes a socket held for backpressure', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    socket.read(100);
    reads.hold();
    vi.advanceTimersByTime(10 * GATHER_MS);
    expect(socket.flowing).toBe(false);
    reads.release();
    expect(socket.flowing).toBe(true);
  });

  it('a release during a gathering pause leaves the resume to the pause', () => {
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    reads.hold();
    reads.release();
    socket.read(100);
    reads.hold();
    reads.release();
    expect(socket.flowing).toBe(false);
    vi.advanceTimersByTime(GATHER_MS);
    expect(socket.flowing).toBe(true);
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
    const socket = new FakeSocket('IPv4');
    const reads = new GatheredReads();
    reads.attach(socket);
    socket.read(100);
    reads.detach();
    vi.advanceTimersByTime(10 * GATHER_MS);
    expect(socket.flowing).toBe(false);
    socket.read(100);
    expect(reads.stats.reads).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('Unix and TLS sockets are not gathered, but still held for backpressure', () => {
    for (const socket of [new FakeSocket(undefined), new FakeSocket('IPv4', true)]) {
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
  });
});
