/**
 * Postgres text values (pgoutput sends every column as text; runs-cdc keeps it raw instead of
 * letting pg's global type parsers turn timestamps into local-time Dates and bigints into floats)
 * converted to ClickHouse values (strings, numbers, booleans, string arrays; the sink encodes
 * them, sink/tab-separated.ts). Pure: no I/O.
 */
import parsePostgresArray from 'postgres-array';
import type { ColumnKind } from '../schema/columns.ts';

export type ClickHouseValue = string | number | boolean | null | string[];

/** A value that could not be represented and was replaced; reported, never silent. */
export interface Coercion {
  column: string;
  value: string;
  reason: string;
}

/** DateTime64's range. Values outside it (or `infinity`) cannot be stored as they are. */
const MIN_YEAR = 1900;
const MAX_YEAR = 2299;
/** Postgres `timestamp` text output (ISO DateStyle): date, time, up to 6 fractional digits. */
const TIMESTAMP_TEXT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;
const INT32_TEXT = /^-?\d{1,10}$/;
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

const EMPTY: Record<ColumnKind, ClickHouseValue> = {
  text: '',
  int: 0,
  float: 0,
  bool: false,
  timestamp: '1970-01-01 00:00:00.000',
  json: '',
  textArray: [],
};

/** What a SQL NULL becomes in a column of this kind. */
export function emptyValue(kind: ColumnKind, nullable: boolean): ClickHouseValue {
  return nullable ? null : EMPTY[kind];
}

export interface ConvertResult {
  value: ClickHouseValue;
  coercion?: string;
}

/**
 * Convert one column value. `null` is SQL NULL; a non-nullable target gets the kind's empty value.
 * A value that cannot be represented becomes NULL (or the empty value) with a coercion reason.
 */
export function convertValue(kind: ColumnKind, nullable: boolean, text: string | null): ConvertResult {
  const empty = emptyValue(kind, nullable);
  if (text === null) return { value: empty };
  switch (kind) {
    case 'text':
    case 'json':
      return { value: text };
    case 'int': {
      const n = INT32_TEXT.test(text) ? Number(text) : Number.NaN;
      if (Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX) return { value: n };
      return { value: empty, coercion: 'not a 32-bit integer' };
    }
    case 'float': {
      const n = Number(text);
      if (Number.isFinite(n)) return { value: n };
      return { value: empty, coercion: 'not a finite number' };
    }
    case 'bool':
      if (text === 't' || text === 'true') return { value: true };
      if (text === 'f' || text === 'false') return { value: false };
      return { value: empty, coercion: 'not a boolean' };
    case 'timestamp':
      return convertTimestamp(text, empty);
    case 'textArray':
      return convertTextArray(text, empty);
  }
}

/** Kept as text with millisecond precision: no Date, so no time zone can shift it. */
function convertTimestamp(text: string, empty: ClickHouseValue): ConvertResult {
  const m = TIMESTAMP_TEXT.exec(text);
  if (!m) return { value: empty, coercion: 'not a timestamp within 1900-2299' };
  const year = Number(m[1]);
  if (year < MIN_YEAR || year > MAX_YEAR) return { value: empty, coercion: 'timestamp outside 1900-2299' };
  // Truncate to milliseconds, as a timestamp(3) column would hold it.
  const millis = (m[7] ?? '').padEnd(3, '0').slice(0, 3);
  return { value: `${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}.${millis}` };
}

function convertTextArray(text: string, empty: ClickHouseValue): ConvertResult {
  try {
    const parsed = parsePostgresArray.parse(text, (v) => v);
    const flat = parsed.flat(Number.POSITIVE_INFINITY) as Array<string | null>;
    // Array(String) cannot hold NULL elements: they become empty strings.
    return { value: flat.map((v) => v ?? '') };
  } catch {
    return { value: empty, coercion: 'not a text array' };
  }
}
