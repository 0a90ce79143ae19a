/** Encoded rows with their line as text: comparing lines as Buffers would compare their whole slabs. */
import type { EncodedRow } from '../../src/sink/runs-sink.ts';

export function withLineText<Row extends EncodedRow>(row: Row): Omit<Row, 'line'> & { line: string } {
  return { ...row, line: row.line.toString('utf8') };
}
