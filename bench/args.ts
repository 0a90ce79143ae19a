import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
/** `--name N` from the command line as a number, or `fallback` when absent. */
export function numberArg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

/** `value` as a fraction of `to`, to three places (how the benches write every ratio). */
export const ratioOf = (value: number, to: number) => Number((value / to).toFixed(3));

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The 1, 5 and 15 minute load averages, recorded beside each figure (the machine is shared). */
export function loadAverage(): number[] {
  return loadavg().map((l) => Number(l.toFixed(2)));
}

/**
 * Keep a run's figures in bench/results/<date>_<commit>_<name>[_LABEL].json with what they were
 * measured on (cores, uptime's load, the arguments); `--save=LABEL` names a resized or partial run.
 */
export function keepResult(name: string, figures: object): string {
  const label = process.argv.find((arg) => arg.startsWith('--save='))?.slice('--save='.length);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const date = new Date().toISOString();
  const uptime = execFileSync('uptime', { encoding: 'utf8' }).trim();
  const stem = `bench/results/${date.slice(0, 10)}_${commit}_${name}${label ? `_${label}` : ''}`;
  // A second run with the same name is kept beside the first, never over it.
  let path = `${stem}.json`;
  for (let n = 2; existsSync(path); n++) path = `${stem}-${n}.json`;
  mkdirSync('bench/results', { recursive: true });
  const kept = { date, commit, cores: availableParallelism(), uptime, argv: process.argv.slice(2), ...figures };
  writeFileSync(path, `${JSON.stringify(kept, null, 2)}\n`);
  return path;
}
