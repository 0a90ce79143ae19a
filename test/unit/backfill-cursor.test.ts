import { describe, expect, it } from 'vitest';
import { CursorError, formatCursor, parseCursor } from '../../src/backfill/cursor.ts';

describe('backfill cursor', () => {
  it('round-trips the timestamp text exactly, microseconds included, and ids containing underscores', () => {
    for (const cursor of [
      { createdAt: '2026-01-31 23:59:59.123456', id: 'run_a_b-c' },
      { createdAt: '2026-01-31 23:59:59', id: '2ABCDEFKSUID' },
      { createdAt: '2026-02-01 00:00:00.5', id: 'c_' },
    ]) {
      expect(parseCursor(formatCursor(cursor))).toEqual(cursor);
    }
  });

  it('accepts a T between date and time', () => {
    expect(parseCursor('2026-01-31T10:00:00.1_x')).toEqual({ createdAt: '2026-01-31 10:00:00.1', id: 'x' });
  });

  it.each([
    ['', 'empty'],
    ['garbage', 'no separator'],
    ['2026-01-31 10:00:00_', 'no id'],
    ['2026-01-31_run', 'no time'],
    ['2026-02-30 10:00:00_run', 'no such day'],
    ['2026-01-31 24:00:00_run', 'no such hour'],
    ['2026-01-31 10:00:00.1234567_run', 'more than microseconds'],
    ['2026-01-31 10:00:00+02_run', 'a time zone'],
  ])('rejects %j (%s) with a message showing the expected form', (text) => {
    expect(() => parseCursor(text)).toThrow(CursorError);
    expect(() => parseCursor(text)).toThrow(/expected <createdAt>_<id>/);
  });
});
