import { describe, expect, it } from 'vitest';
import { ReconnectBackoff, STREAM_HEALTHY_MS } from '../../src/replication/backoff.ts';

describe('ReconnectBackoff', () => {
  it('keeps doubling while each stream fails right after it started without progress', () => {
    const backoff = new ReconnectBackoff(500, 30_000);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      backoff.started(100n, i * 1_000);
      delays.push(backoff.failed(100n, i * 1_000 + 50).delayMs);
    }
    expect(delays).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('starts over after a stream that confirmed progress', () => {
    const backoff = new ReconnectBackoff(500, 30_000);
    backoff.started(100n, 0);
    backoff.failed(100n, 10);
    backoff.started(100n, 20);
    expect(backoff.failed(100n, 30)).toEqual({ attempt: 2, delayMs: 1_000 });
    backoff.started(100n, 40);
    expect(backoff.failed(200n, 50)).toEqual({ attempt: 1, delayMs: 500 });
  });

  it('starts over after a stream that was up for STREAM_HEALTHY_MS, even idle', () => {
    const backoff = new ReconnectBackoff(500, 30_000);
    backoff.started(100n, 0);
    backoff.failed(100n, 10);
    backoff.started(100n, 1_000);
    expect(backoff.failed(100n, 1_000 + STREAM_HEALTHY_MS - 1).attempt).toBe(2);
    backoff.started(100n, 100_000);
    expect(backoff.failed(100n, 100_000 + STREAM_HEALTHY_MS).attempt).toBe(1);
  });

  it('counts failures to reach Postgres (no stream started) as further attempts', () => {
    const backoff = new ReconnectBackoff(500, 30_000);
    backoff.started(100n, 0);
    expect(backoff.failed(500n, 10).attempt).toBe(1);
    expect(backoff.failed(500n, 20).attempt).toBe(2);
    expect(backoff.failed(500n, 30).attempt).toBe(3);
  });
});
