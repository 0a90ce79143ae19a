import { describe, expect, it } from 'vitest';
import { LagTracker } from '../../src/replication/lag.ts';

describe('LagTracker', () => {
  it('counts a transaction from its BEGIN until the confirmed position passes its commit', () => {
    const lag = new LagTracker();
    expect(lag.lag(100n, 10_000)).toEqual({ seconds: 0, bytes: 0 });
    lag.announced(500n, 4_000); // BEGIN of a transaction committed at 4 s, commit record at 500
    lag.reached(200n);
    expect(lag.lag(100n, 10_000)).toEqual({ seconds: 6, bytes: 400 });
    expect(lag.lag(500n, 10_000)).toEqual({ seconds: 6, bytes: 0 }); // its commit record is not passed yet
    expect(lag.lag(560n, 10_000)).toEqual({ seconds: 0, bytes: 0 }); // its end: confirmed
  });

  it('measures seconds from the oldest unconfirmed transaction and ignores a replayed BEGIN', () => {
    const lag = new LagTracker();
    lag.announced(300n, 1_000);
    lag.announced(600n, 5_000);
    lag.announced(300n, 1_000); // replayed after a reconnect
    expect(lag.lag(100n, 9_000).seconds).toBe(8);
    expect(lag.lag(400n, 9_000)).toEqual({ seconds: 4, bytes: 200 });
  });

  it('forgets confirmed transactions as they are confirmed, whether or not the lag is read', () => {
    const lag = new LagTracker();
    for (let i = 1; i <= 1_000; i++) lag.announced(BigInt(i * 100), i);
    expect(lag.waiting).toBe(1_000);
    lag.confirmed(50_050n); // past the commit records of the first 500
    expect(lag.waiting).toBe(500);
    lag.confirmed(100_001n);
    expect(lag.waiting).toBe(0);
  });
});
