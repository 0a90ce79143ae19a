import { describe, expect, it } from 'vitest';
import { parseBackfillOptions, parseUtcTime } from '../../src/backfill/request.ts';
import { BACKFILL_PROFILES, backfillTuning, loadConfig } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('backfill options', () => {
  it('turns UTC dates and times into Postgres timestamp text whose string order is time order', () => {
    expect(parseUtcTime('2026-01-31', '--from')).toBe('2026-01-31 00:00:00');
    expect(parseUtcTime('2026-01-31T12:30', '--from')).toBe('2026-01-31 12:30:00');
    expect(parseUtcTime('2026-01-31T12:30:00.120Z', '--from')).toBe('2026-01-31 12:30:00.12');
    expect(parseUtcTime('2026-01-31 12:30:00.000', '--from')).toBe('2026-01-31 12:30:00');
    expect(() => parseUtcTime('2026-01-31T12:30:00+02:00', '--to')).toThrow(/--to "2026-01-31T12:30:00\+02:00" is not a UTC date/);
    expect(() => parseUtcTime('31/01/2026', '--from')).toThrow(ConfigError);
  });

  it('builds the request: both tables by default, explicit range and cursor', () => {
    const action = parseBackfillOptions({ table: 'task_run_v2', from: '2026-01-01', to: '2026-02-01', after: '2026-01-05 00:00:00_x' });
    expect(action).toEqual({
      kind: 'run',
      dryRun: false,
      request: {
        tables: ['task_run_v2'],
        from: '2026-01-01 00:00:00',
        to: '2026-02-01 00:00:00',
        after: { createdAt: '2026-01-05 00:00:00', id: 'x' },
        mode: 'default',
        exactCount: false,
        createSlot: false,
      },
    });
    const all = parseBackfillOptions({});
    expect(all.kind === 'run' && all.request.tables).toEqual(['TaskRun', 'task_run_v2']);
  });

  it.each([
    [{ table: 'runs' }, 'unknown table "runs"'],
    [{ from: '2026-02-01', to: '2026-02-01' }, '--from 2026-02-01 is not before --to 2026-02-01'],
    [{ after: 'nope' }, '--after: malformed cursor "nope"'],
    [{ mode: 'fast' }, '--mode: must be default or repair'],
    [{ resume: 'bf_20261123_abcdef', table: 'TaskRun' }, '--resume continues a job with its own tables'],
    [{ resume: 'job-1' }, '--resume: is not a backfill job id'],
    [{ resume: 'bf_20261123_abcdef', dryRun: true }, '--dry-run plans a new job'],
  ])('rejects %j with one clear sentence', (options, message) => {
    expect(() => parseBackfillOptions(options)).toThrow(ConfigError);
    expect(() => parseBackfillOptions(options)).toThrow(message);
  });

  it('profiles set every knob and explicit settings override single values', () => {
    expect(backfillTuning(loadConfig({}, {}))).toMatchObject({ chunkRows: 5_000, rateLimit: 0, concurrency: 1 });
    const smoke = backfillTuning(loadConfig({ backfillProfile: 'smoke' }, { RUNS_CDC_BACKFILL_CHUNK_ROWS: '250' }));
    expect(smoke).toEqual({ ...BACKFILL_PROFILES.smoke, reason: undefined, chunkRows: 250 });
    expect(() => loadConfig({ backfillProfile: 'weekly' }, {})).toThrow(/--profile \(RUNS_CDC_BACKFILL_PROFILE\)/);
    for (const profile of Object.values(BACKFILL_PROFILES)) expect(profile.reason.length).toBeGreaterThan(40);
  });
});
