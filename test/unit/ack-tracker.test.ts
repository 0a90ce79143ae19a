import { describe, expect, it } from 'vitest';
import { AckTracker } from '../../src/replication/ack-tracker.ts';

describe('AckTracker', () => {
  it('confirms a commit only once all its rows are written', () => {
    const acks = new AckTracker(100n);
    acks.commit(200n, 5);
    expect(acks.written(4)).toBeUndefined();
    expect(acks.confirmedLsn).toBe(100n);
    expect(acks.written(5)).toBe(200n);
  });

  it('confirms the latest fully written commit, not a later partial one', () => {
    const acks = new AckTracker(0n);
    acks.commit(10n, 2);
    acks.commit(20n, 4);
    acks.commit(30n, 9);
    expect(acks.written(6)).toBe(20n);
    expect(acks.pendingCommits).toBe(1);
    expect(acks.written(9)).toBe(30n);
  });

  it('a commit whose rows are already written (or that had none) is confirmable at once', () => {
    const acks = new AckTracker(0n);
    expect(acks.commit(10n, 0)).toBe(10n); // an empty transaction before any row
    expect(acks.written(3)).toBeUndefined();
    expect(acks.commit(20n, 3)).toBe(20n);
    expect(acks.commit(30n, 4)).toBeUndefined(); // its last row is not written yet
  });

  it('rows written before their commit arrives confirm nothing until the commit', () => {
    const acks = new AckTracker(0n);
    expect(acks.written(1_000)).toBeUndefined(); // pieces of an open transaction
    expect(acks.commit(50n, 1_000)).toBe(50n);
  });

  it('an idle keepalive advances to the WAL end; a busy one does not', () => {
    const acks = new AckTracker(10n);
    expect(acks.keepalive(40n, false)).toBeUndefined();
    acks.commit(20n, 1);
    expect(acks.keepalive(40n, true)).toBeUndefined(); // a commit is still pending
    acks.written(1);
    expect(acks.keepalive(40n, true)).toBe(40n);
    expect(acks.keepalive(30n, true)).toBeUndefined(); // never backwards
  });

  it('a transaction replayed after a reconnect confirms nothing new and leaves nothing waiting', () => {
    const acks = new AckTracker(100n);
    acks.commit(90n, 1); // replayed after a reconnect: at or below the confirmed LSN
    expect(acks.written(1)).toBeUndefined(); // nothing new to confirm...
    expect(acks.pendingCommits).toBe(0); // ...but nothing waits either
    acks.commit(200n, 2);
    acks.commit(300n, 3);
    expect(acks.written(2)).toBe(200n); // the 300 transaction is still waiting
    expect(acks.pendingCommits).toBe(1);
  });
});
