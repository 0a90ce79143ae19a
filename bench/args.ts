import { loadavg } from 'node:os';
/** `--name N` from the command line as a number, or `fallback` when absent. */
export function numberArg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

/** The 1, 5 and 15 minute load averages, recorded beside each figure (the machine is shared). */
export function loadAverage(): number[] {
  return loadavg().map((l) => Number(l.toFixed(2)));
}
