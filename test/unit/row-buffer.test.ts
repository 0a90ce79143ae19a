import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RowBuffer, type RowBufferLimits } from '../../src/replication/row-buffer.ts';

const limits: RowBufferLimits = {
  batchRows: 3,
  batchBytes: 1_000_000,
  flushIntervalMs: 10,
  maxBufferedRows: 5,
  maxBufferedBytes: 1_000_000,
  flushGroups: 'sequential',
};

/** A write that completes when the test says so, recording what it was given. */
function controlledWrites() {
  const calls: Array<{ rows: number; release: () => void; fail: (e: Error) => void }> = [];
  const write = (_target: string, rows: unknown[]) =>
    new Promise<void>((release, fail) => {
      calls.push({ rows: rows.length, release, fail });
    });
  return { calls, write };
}

describe('RowBuffer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('flushes a full batch at once and reports the last written sequence number', async () => {
    const { calls, write } = controlledWrites();
    const written: number[] = [];
    const buffer = new RowBuffer({
      limits,
      write,
      onWritten: (seq) => written.push(seq),
      onFailure: () => {},
    });
    for (let i = 0; i < 3; i++) buffer.append({ i }, 't', 1);
    expect(calls.map((c) => c.rows)).toEqual([3]);
    calls[0]!.release();
    await buffer.flushAll();
    expect(written).toEqual([3]);
  });

  it('flushes a partial batch after the interval', async () => {
    const written: number[] = [];
    const buffer = new RowBuffer({
      limits,
      write: async () => {},
      onWritten: (seq) => written.push(seq),
      onFailure: () => {},
    });
    buffer.append({ i: 1 }, 't', 1);
    await vi.advanceTimersByTimeAsync(limits.flushIntervalMs - 1);
    expect(written).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(written).toEqual([1]);
  });

  it('rows that arrived during a flush are due an interval after the oldest of them, not after the flush', async () => {
    const { calls, write } = controlledWrites();
    const buffer = new RowBuffer({ limits: { ...limits, maxBufferedRows: 10 }, write, onWritten: () => {}, onFailure: () => {} });
    for (let i = 0; i < 3; i++) buffer.append({ i }, 't', 1); // a full batch: written at once
    buffer.append({ i: 3 }, 't', 1); // a backlog's tail, arriving while that batch is written
    await vi.advanceTimersByTimeAsync(limits.flushIntervalMs + 5);
    expect(calls.map((c) => c.rows)).toEqual([3]);
    calls[0]!.release(); // the tail is already an interval old: it goes now, not an interval later
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.rows)).toEqual([3, 1]);
    calls[1]!.release();
    await vi.advanceTimersByTimeAsync(0);

    // A young row left after a flush still waits out its own interval (a trickle stays batched).
    for (let i = 0; i < 3; i++) buffer.append({ i }, 't', 1);
    await vi.advanceTimersByTimeAsync(8);
    buffer.append({ i: 3 }, 't', 1); // due 10 ms from now
    await vi.advanceTimersByTimeAsync(2);
    calls[2]!.release();
    await vi.advanceTimersByTimeAsync(7);
    expect(calls.map((c) => c.rows)).toEqual([3, 1, 3]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => c.rows)).toEqual([3, 1, 3, 1]);
    calls[3]!.release();
    await buffer.flushAll();
  });

  it('holds the reader at the limit and never exceeds it', async () => {
    const { calls, write } = controlledWrites();
    const buffer = new RowBuffer({
      limits,
      write,
      onWritten: () => {},
      onFailure: () => {},
    });
    for (let i = 0; i < 5; i++) buffer.append({ i }, 't', 1);
    expect(buffer.hasRoomFor(1, 10)).toBe(false);
    let admitted = false;
    const waiting = buffer.waitForRoom(1, 10).then(() => {
      admitted = true;
    });
    await vi.advanceTimersByTimeAsync(1_000); // timers firing change nothing: only a written batch makes room
    expect(admitted).toBe(false);
    calls[0]!.release(); // the first batch of 3 is written: room for more
    await waiting;
    expect(admitted).toBe(true);
    expect(buffer.stats.highWaterRows).toBe(5);
  });

  it('lets the held reader go on as soon as one batch is written, while the next is still being written', async () => {
    const { calls, write } = controlledWrites();
    // Room for three batches of 3: the reader fills it, then waits.
    const buffer = new RowBuffer({
      limits: { ...limits, maxBufferedRows: 9 },
      write,
      onWritten: () => {},
      onFailure: () => {},
    });
    for (let i = 0; i < 9; i++) buffer.append({ i }, 't', 1);
    let admitted = false;
    const waiting = buffer.waitForRoom(3, 3).then(() => {
      admitted = true;
    });
    calls[0]!.release(); // batch 1 written; batch 2 starts at once
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.map((c) => c.rows)).toEqual([3, 3]);
    // Reading resumes beside the insert of batch 2, not once batches 2 and 3 are written too.
    expect(admitted).toBe(true);
    await waiting;
    calls[1]!.release();
    await vi.advanceTimersByTimeAsync(0);
    calls[2]!.release();
    await buffer.flushAll();
    expect(buffer.stats.rowsFlushed).toBe(9);
  });

  it('a failed write stops flushing, reports once and rejects waiters', async () => {
    const { calls, write } = controlledWrites();
    const failures: Error[] = [];
    const written: number[] = [];
    const buffer = new RowBuffer({
      limits,
      write,
      onWritten: (seq) => written.push(seq),
      onFailure: (e) => failures.push(e),
    });
    for (let i = 0; i < 5; i++) buffer.append({ i }, 't', 1);
    const waiter = buffer.waitForRoom(1, 1); // at the 5-row limit: waits for the flush
    calls[0]!.fail(new Error('schema mismatch'));
    await expect(waiter).rejects.toThrow('schema mismatch');
    await expect(buffer.flushAll()).rejects.toThrow('schema mismatch');
    expect(calls).toHaveLength(1); // the remaining 2 rows are never written
    expect(failures).toHaveLength(1);
    expect(written).toEqual([]);
  });

  it('writes groups one after another by default, all at once when parallel', async () => {
    for (const flushGroups of ['sequential', 'parallel'] as const) {
      let concurrent = 0;
      let peak = 0;
      const write = async () => {
        concurrent += 1;
        peak = Math.max(peak, concurrent);
        await Promise.resolve();
        concurrent -= 1;
      };
      const buffer = new RowBuffer({
        limits: { ...limits, flushGroups },
        write,
        onWritten: () => {},
        onFailure: () => {},
      });
      buffer.append({ i: 1 }, 'a', 1);
      buffer.append({ i: 2 }, 'b', 1);
      buffer.append({ i: 3 }, 'c', 1);
      await buffer.flushAll();
      expect(peak).toBe(flushGroups === 'parallel' ? 3 : 1);
    }
  });

  it('flushes when the batch byte size is reached, before the row count', async () => {
    const { calls, write } = controlledWrites();
    const buffer = new RowBuffer({
      limits: { ...limits, batchRows: 100, batchBytes: 250 },
      write,
      onWritten: () => {},
      onFailure: () => {},
    });
    buffer.append({ i: 1 }, 't', 100);
    buffer.append({ i: 2 }, 't', 100);
    expect(calls).toEqual([]);
    buffer.append({ i: 3 }, 't', 100);
    expect(calls.map((c) => c.rows)).toEqual([3]);
  });

  it('the byte limit holds the reader too, but one oversized change always gets in', () => {
    const buffer = new RowBuffer({
      limits: { ...limits, maxBufferedBytes: 1_000 },
      write: async () => {},
      onWritten: () => {},
      onFailure: () => {},
    });
    expect(buffer.hasRoomFor(1, 5_000)).toBe(true); // empty buffer: never deadlock on a huge row
    buffer.append({ i: 1 }, 't', 900);
    expect(buffer.hasRoomFor(1, 100)).toBe(true);
    expect(buffer.hasRoomFor(1, 101)).toBe(false);
  });
});
