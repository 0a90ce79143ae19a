/**
 * The backfill's keyset cursor: the last copied row's `("createdAt", id)`, written
 * `<createdAt>_<id>`. The timestamp stays the text Postgres printed, at the column's full
 * precision (a JS Date would drop microseconds of a timestamp(6) column and skip rows), and is
 * handed back to Postgres as text, so the comparison `("createdAt", id) > (cursor)` happens in
 * Postgres, under the column's own collation for the id: the same order the index and the
 * page's ORDER BY use. Pure: no I/O.
 */
import { RunsCdcError } from '../errors.ts';

export interface Cursor {
  /** `"createdAt"` as Postgres prints a timestamp (ISO DateStyle), e.g. `2026-01-02 03:04:05.123456`. */
  createdAt: string;
  id: string;
}

/** A timestamp as Postgres prints it with DateStyle ISO (what the backfill's sessions use). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/;

export class CursorError extends RunsCdcError {}

export function formatCursor(cursor: Cursor): string {
  return `${cursor.createdAt}_${cursor.id}`;
}

/** Parse `<createdAt>_<id>`; the timestamp has no `_`, so the first one separates them. A `T`
 * between date and time is accepted (it is easier to type than a quoted space). */
export function parseCursor(text: string): Cursor {
  const at = text.indexOf('_');
  const createdAt = (at < 0 ? text : text.slice(0, at)).replace('T', ' ');
  const id = at < 0 ? '' : text.slice(at + 1);
  if (!TIMESTAMP.test(createdAt) || !isCalendarTimestamp(createdAt) || id === '') {
    throw new CursorError(
      `malformed cursor ${JSON.stringify(text)}: expected <createdAt>_<id>, e.g. "2026-01-31 23:59:59.123_run_abc" (the createdAt as Postgres prints it, then the run id)`,
    );
  }
  return { createdAt, id };
}

/** Month 1-12, a day that month has, hour < 24 and so on. */
export function isCalendarTimestamp(text: string): boolean {
  const [date = '', time = ''] = text.split(' ');
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  const [hour, minute, second] = time.split(':').map(Number) as [number, number, number];
  const probe = new Date(Date.UTC(year, month - 1, day));
  return (
    probe.getUTCFullYear() === year &&
    probe.getUTCMonth() === month - 1 &&
    probe.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    second < 60
  );
}
