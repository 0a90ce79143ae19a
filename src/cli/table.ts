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
