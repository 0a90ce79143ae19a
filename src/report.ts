/**
 * Plain-text reports for terminal output, shared by the CLI commands and the demo (which must not
 * reach up into the CLI): an aligned table, and the one-line summary of a backfill.
 */
import type { BackfillResult } from './backfill/job.ts';

/** An aligned text table for terminal output. */
export function formatTable(rows: ReadonlyArray<object>): string {
  if (rows.length === 0) return '(none)';
  const columns = Object.keys(rows[0] as object);
  const cells = rows.map((row) => {
    const r = row as Record<string, unknown>;
    return columns.map((c) => (Array.isArray(r[c]) ? (r[c] as unknown[]).join(',') : String(r[c] ?? '')));
  });
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** One line saying how a backfill ended and what it copied. */
export function backfillSummary(result: BackfillResult): string {
  const perTable = result.tables.map((t) => `${t.table} ${t.copied}`).join(', ');
  return `backfill ${result.jobId} ${result.status}: ${result.message} (${perTable}; ${result.rowsCopied} by this run in ${result.seconds.toFixed(1)} s)`;
}
