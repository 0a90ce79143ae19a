/**
 * The column mapping compiled into one function: a tuple of text values straight to its
 * TabSeparated line, with no row object in between. The backfill's path for every row it reads
 * (the daemon encodes from the message bytes instead, wire-line.ts, and takes its conversions
 * from here); anything else takes row.ts's buildRow.
 *
 * Output is byte for byte what `encodeTabSeparatedLine(buildRow(...))` gives, coercions included
 * (test/unit/tuple-line.test.ts checks that on hostile tuples). The speed comes from reading each
 * column by a constant name (one property load on the tuple's shape, not a keyed lookup), passing
 * values that need no conversion or escaping through as they are, fast paths for the common
 * timestamp and text-array texts, and one reused field array per line. Pure: no I/O.
 */

import { type ColumnKind, SOURCE_COLUMNS, type SourceTable } from '../schema/columns.ts';
import { rankedVersion } from '../schema/version.ts';
import { sharedLines } from '../sink/line-slab.ts';
import { field, quotedItem, stringField } from '../sink/tab-separated.ts';
import type { RoutedEncodedRow } from '../sink/targets.ts';
import type { Tuple } from './row.ts';
import { type Coercion, convertValue, emptyValue } from './values.ts';

/** The general conversion (values.ts), for any text a fast path does not take. */
function converted(kind: ColumnKind, nullable: boolean, source: string, text: string, coercions: Coercion[]): string {
  const { value, coercion } = convertValue(kind, nullable, text);
  if (coercion) coercions.push({ column: source, value: String(text).slice(0, 200), reason: coercion });
  return field(value);
}

const INT32_TEXT = /^-?\d{1,10}$/;

function intField(text: string, nullable: boolean, source: string, coercions: Coercion[]): string {
  const n = INT32_TEXT.test(text) ? Number(text) : Number.NaN;
  if (n >= -2_147_483_648 && n <= 2_147_483_647) return String(n);
  return converted('int', nullable, source, text, coercions);
}

function floatField(text: string, nullable: boolean, source: string, coercions: Coercion[]): string {
  const n = Number(text);
  if (Number.isFinite(n)) return String(n);
  return converted('float', nullable, source, text, coercions);
}

function boolField(text: string, nullable: boolean, source: string, coercions: Coercion[]): string {
  if (text === 't') return 'true';
  if (text === 'f') return 'false';
  return converted('bool', nullable, source, text, coercions);
}

export const isDigit = (code: number) => code >= 48 && code <= 57;
/** Where `YYYY-MM-DD HH:MM:SS` has digits; the other positions hold its separators (char codes). */
export const TIMESTAMP_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
export const TIMESTAMP_SEPARATORS: ReadonlyArray<[number, number]> = [
  [4, 45],
  [7, 45],
  [10, 32],
  [13, 58],
  [16, 58],
];
/** What pads a text of this length (no fraction, or 1-2 fractional digits) to milliseconds. */
const MILLIS_PAD: Readonly<Record<number, string>> = { 19: '.000', 21: '00', 22: '0' };

/** Postgres `timestamp` text in 1900-2299 -> `YYYY-MM-DD HH:MM:SS.mmm`, as values.ts's convertTimestamp. */
function timestampField(text: string, nullable: boolean, source: string, coercions: Coercion[]): string {
  const length = text.length;
  if (length === 19 || (length >= 21 && length <= 26 && text.charCodeAt(19) === 46)) {
    let ok = true;
    for (const at of TIMESTAMP_DIGITS) ok &&= isDigit(text.charCodeAt(at));
    for (const [at, code] of TIMESTAMP_SEPARATORS) ok &&= text.charCodeAt(at) === code;
    for (let at = 20; at < length; at++) ok &&= isDigit(text.charCodeAt(at));
    const year = ok ? Number(text.slice(0, 4)) : 0;
    if (year >= 1900 && year <= 2299) {
      if (length === 23) return text;
      return length > 23 ? text.slice(0, 23) : text + MILLIS_PAD[length];
    }
  }
  return converted('timestamp', nullable, source, text, coercions);
}

/** A one-dimensional array of plain elements: none quoted, empty, spaced, or holding quotes, backslashes or braces. */
const PLAIN_ARRAY = /^\{[^"\\{}\s,]+(?:,[^"\\{}\s,]+)*\}$/;

function textArrayField(text: string, nullable: boolean, source: string, coercions: Coercion[]): string {
  if (text === '{}') return '[]';
  if (!PLAIN_ARRAY.test(text)) return converted('textArray', nullable, source, text, coercions);
  const items = text.slice(1, -1).split(',');
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as string;
    items[i] = quotedItem(item === 'NULL' ? '' : item); // Array(String) holds no NULL: ''
  }
  return `[${items.join(',')}]`;
}

/** Each kind's field from its text (text and json: escaped as they are). Also wire-line.ts's conversions. */
export const KIND_FIELDS: Readonly<Record<ColumnKind, (text: string, nullable: boolean, source: string, coercions: Coercion[]) => string>> =
  {
    text: stringField,
    json: stringField,
    int: intField,
    float: floatField,
    bool: boolField,
    timestamp: timestampField,
    textArray: textArrayField,
  };

type FillFields = (tuple: Tuple, fields: string[], coercions: Coercion[]) => boolean;

/**
 * `fill(t, f, c)`: f[i] = the field of SOURCE_COLUMNS[i], the value taken from `t`; false as soon
 * as `t` does not carry one. Generated so each column is read by its constant name and converted
 * by its kind's own call (KIND_FIELDS, bound as field_<kind>).
 */
const fill = (() => {
  const body = SOURCE_COLUMNS.map((column, i) => {
    const source = JSON.stringify(column.source);
    const nullField = JSON.stringify(field(emptyValue(column.kind, column.nullable)));
    return `v = t[${source}];
if (v === undefined) return false;
f[${i}] = v === null ? ${nullField} : field_${column.kind}(v, ${column.nullable}, ${source}, c);`;
  });
  const kinds = Object.keys(KIND_FIELDS) as ColumnKind[];
  const compile = new Function(
    ...kinds.map((kind) => `field_${kind}`),
    `return function fill(t, f, c) {\nlet v;\n${body.join('\n')}\nreturn true;\n};`,
  );
  return compile(...kinds.map((kind) => KIND_FIELDS[kind])) as FillFields;
})();

/** Reused by every line: joined into a new string, so nothing of it outlives the call. */
const FIELDS = new Array<string>(SOURCE_COLUMNS.length + 3).fill('');
const N = SOURCE_COLUMNS.length;

/** One live row's line (the backfill writes no tombstones this way); undefined when a mapped column is not carried. */
export function encodeTupleLine(
  tuple: Tuple,
  sourceTable: SourceTable,
  version: bigint,
  coercions: Coercion[],
): RoutedEncodedRow | undefined {
  if (!fill(tuple, FIELDS, coercions)) return undefined;
  FIELDS[N] = stringField(sourceTable);
  FIELDS[N + 1] = rankedVersion(sourceTable, version).toString();
  FIELDS[N + 2] = '0';
  return {
    line: sharedLines.text(FIELDS.join('\t')),
    sourceTable,
    deleted: false,
    runId: tuple.id ?? '',
    organizationId: tuple.organizationId ?? '',
  };
}
