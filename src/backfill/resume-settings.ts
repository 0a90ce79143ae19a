/**
 * What a resumed backfill runs with: the tuning the job was started with (kept in its record),
 * except where the resume names a value itself. A job started with `--rate-limit 1000` goes on at
 * 1,000 rows/s after `--resume`, unless the resume says `--rate-limit`. Its tables, range and mode
 * come from the job and its checkpoints and cannot change (request.ts refuses those flags).
 */
import {
  BACKFILL_PROFILES,
  type BackfillTuning,
  CONFIG_SOURCES,
  type Config,
  type ConfigKey,
  BACKFILL_TUNING_KEYS as TUNING_KEYS,
} from '../config.ts';
import { ConfigError } from '../errors.ts';

/**
 * The tuning values given for this run (flag or environment variable), not the profile's
 * defaults. A `--profile` other than the default gives all of its values.
 */
export function explicitTuning(config: Config): Partial<BackfillTuning> {
  const profile = config.backfillProfile === 'default' ? undefined : BACKFILL_PROFILES[config.backfillProfile];
  const given: Partial<BackfillTuning> = {};
  for (const [name, key] of Object.entries(TUNING_KEYS) as Array<[keyof BackfillTuning, ConfigKey]>) {
    // A profile's concurrency is no request to re-cut a resumed job's ranges; only --concurrency is.
    const value = (config[key] as number | undefined) ?? (name === 'concurrency' ? undefined : profile?.[name]);
    if (value !== undefined) given[name] = value;
  }
  return given;
}

export interface ResumedTuning {
  tuning: BackfillTuning;
  /** Each value the resume changed, as `--flag old -> new`. */
  overridden: string[];
  /** False for a job recorded before its tuning was (it then runs with this run's tuning). */
  fromJob: boolean;
}

/**
 * The job's saved tuning with `overrides` over it. Without a saved tuning (older jobs), `current`.
 * Concurrency cannot change: the job's sub-ranges were cut for it when it started.
 */
export function resumedTuning(
  saved: BackfillTuning | undefined,
  overrides: Partial<BackfillTuning>,
  current: BackfillTuning,
): ResumedTuning {
  if (!saved) return { tuning: current, overridden: [], fromJob: false };
  const tuning = { ...saved };
  const overridden: string[] = [];
  for (const name of Object.keys(TUNING_KEYS) as Array<keyof BackfillTuning>) {
    const value = overrides[name];
    if (value === undefined || value === saved[name]) continue;
    const flag = CONFIG_SOURCES[TUNING_KEYS[name]].flag;
    if (name === 'concurrency') {
      throw new ConfigError(
        `${flag} ${value} cannot apply to a resumed job: its sub-ranges were cut for concurrency ${saved.concurrency} when it started; drop ${flag} (or start a new job)`,
      );
    }
    tuning[name] = value;
    overridden.push(`${flag} ${saved[name]} -> ${value}`);
  }
  return { tuning, overridden, fromJob: true };
}

/** The tuning in one line, for the log. */
export function describeTuning(t: BackfillTuning): string {
  return `chunk ${t.chunkRows} rows, rate ${t.rateLimit || 'unlimited'} rows/s, concurrency ${t.concurrency}, checkpoint every ${t.checkpointEvery} pages, max rows ${t.maxRows || 'all'}`;
}
