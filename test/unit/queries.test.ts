import { describe, expect, it } from 'vitest';
import { filtersSchema, parseTime, periodMs, timeWindow, whereClause } from '../../src/queries/filters.ts';
import { bucketWidth, slices } from '../../src/queries/run-queries.ts';

const HOUR = 3_600_000;
const SCOPE = { organizationId: "o'1", projectId: 'p\\1', environmentId: 'e%_1' };

describe('query inputs', () => {
  it('binds every value as a parameter: none appears in the SQL text', () => {
    const filters = filtersSchema.parse({ ...SCOPE, tasks: "x'); DROP TABLE t; --", tagsAny: ['100%'], batchId: 'b_"1' });
    const where = whereClause(filters, { fromMs: 0, toMs: HOUR });
    for (const value of ["o'1", 'p\\1', 'e%_1', 'DROP TABLE', '100%', 'b_"1']) expect(where.sql).not.toContain(value);
    expect(where.params).toMatchObject({ organizationId: "o'1", tasks: ["x'); DROP TABLE t; --"], tagsAny: ['100%'], batchId: 'b_"1' });
  });

  it('reads periods and UTC times, and orders the window', () => {
    expect(periodMs('30m')).toBe(30 * 60_000);
    expect(periodMs('7d')).toBe(7 * 24 * HOUR);
    const now = Date.UTC(2026, 10, 23, 12);
    expect(parseTime('24h', now)).toBe(now - 24 * HOUR);
    expect(parseTime('2026-11-01', now)).toBe(Date.UTC(2026, 10, 1));
    expect(parseTime('2026-11-01T10:30:00.5Z', now)).toBe(Date.UTC(2026, 10, 1, 10, 30, 0, 500));
    expect(timeWindow({}, now)).toEqual({ fromMs: now - 7 * 24 * HOUR, toMs: now });
    expect(() => timeWindow({ from: '2026-11-02', to: '2026-11-01' }, now)).toThrow('must be before to');
    expect(() => parseTime('2026-11-01+02:00', now)).toThrow('is not an ISO UTC time');
  });
});

describe('time slices and buckets', () => {
  it('covers the window exactly, from the cursor outward, growing 8 times', () => {
    const window = { fromMs: 0, toMs: 100 * HOUR };
    const forward = slices(window, undefined, false);
    expect(forward[0]).toEqual({ fromMs: 99 * HOUR, toMs: 100 * HOUR });
    expect(forward[1]).toEqual({ fromMs: 91 * HOUR, toMs: 99 * HOUR });
    expect(forward.at(-1)?.fromMs).toBe(0);
    for (let i = 1; i < forward.length; i++) expect(forward[i]?.toMs).toBe(forward[i - 1]?.fromMs);
    // A cursor's own millisecond is inside the first slice (the keyset picks rows after it).
    expect(slices(window, 50 * HOUR, false)[0]).toEqual({ fromMs: 49 * HOUR + 1, toMs: 50 * HOUR + 1 });
    const backward = slices(window, 50 * HOUR, true);
    expect(backward[0]).toEqual({ fromMs: 50 * HOUR, toMs: 51 * HOUR });
    expect(backward.at(-1)?.toMs).toBe(100 * HOUR);
  });

  it('picks the first round bucket width giving at most 100 buckets', () => {
    expect(bucketWidth(30 * 60_000)).toBe(60);
    expect(bucketWidth(24 * HOUR)).toBe(900);
    expect(bucketWidth(7 * 24 * HOUR)).toBe(10_800);
    expect(bucketWidth(90 * 24 * HOUR)).toBe(86_400);
  });
});
