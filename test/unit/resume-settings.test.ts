import { describe, expect, it } from 'vitest';
import { explicitTuning, resumedTuning } from '../../src/backfill/resume-settings.ts';
import { BACKFILL_PROFILES, loadConfig } from '../../src/config.ts';

const SAVED = { chunkRows: 1000, rateLimit: 1000, concurrency: 2, checkpointEvery: 1, maxRows: 0 };

describe('explicitTuning: what a resume was told, not the defaults', () => {
  it('nothing given: nothing to override', () => {
    expect(explicitTuning(loadConfig({}, {}))).toEqual({});
  });
  it('flags and environment variables are given values', () => {
    expect(explicitTuning(loadConfig({ backfillRateLimit: '0' }, { RUNS_CDC_BACKFILL_CHUNK_ROWS: '200' }))).toEqual({
      rateLimit: 0,
      chunkRows: 200,
    });
  });
  it('a profile gives its values, except concurrency (a resumed job keeps its ranges)', () => {
    const { concurrency: _, reason: __, ...nightly } = BACKFILL_PROFILES.nightly;
    expect(explicitTuning(loadConfig({ backfillProfile: 'nightly' }, {}))).toEqual(nightly);
  });
});

describe('resumedTuning', () => {
  const current = BACKFILL_PROFILES.default;
  it("keeps the job's tuning when nothing is given", () => {
    expect(resumedTuning(SAVED, {}, current)).toEqual({ tuning: SAVED, overridden: [], fromJob: true });
  });
  it('a given value replaces the saved one and is named; an equal one is no override', () => {
    expect(resumedTuning(SAVED, { rateLimit: 0, chunkRows: 1000 }, current)).toEqual({
      tuning: { ...SAVED, rateLimit: 0 },
      overridden: ['--rate-limit 1000 -> 0'],
      fromJob: true,
    });
  });
  it('refuses another concurrency, and takes the same one', () => {
    expect(() => resumedTuning(SAVED, { concurrency: 4 }, current)).toThrow('--concurrency 4 cannot apply to a resumed job');
    expect(resumedTuning(SAVED, { concurrency: 2 }, current).tuning).toEqual(SAVED);
  });
  it("a job recorded without its tuning runs with this run's", () => {
    expect(resumedTuning(undefined, { rateLimit: 5 }, current)).toEqual({ tuning: current, overridden: [], fromJob: false });
  });
});
