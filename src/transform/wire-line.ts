/**
 * A change's TabSeparated lines encoded straight from the pgoutput message bytes into a line slab:
 * no string per value, no row object, no line string. The daemon's path for every change whose
 * tuples carry all mapped columns (FULL identity); anything else takes row.ts's transformChange.
 *
 * Output is byte for byte what `encodeTabSeparatedLine(buildRow(...))` gives, coercions included
 * (test/unit/wire-line.test.ts checks that on hostile tuples). Texts are copied with their
 * escapes, and integers, booleans and timestamps in Postgres's usual form are checked and copied
 * as they are; anything else (floats, arrays, unusual forms) is decoded and goes through
 * tuple-line.ts's field functions, so every rule lives in one place. Pure: no I/O.
 */

import { type ColumnKind, SORT_KEY_SOURCE_COLUMNS, SOURCE_COLUMNS, type SourceTable } from '../schema/columns.ts';
import { rankedVersion } from '../schema/version.ts';
import { type LineSlab, sharedLines } from '../sink/line-slab.ts';
import { field, stringField } from '../sink/tab-separated.ts';
import type { RoutedEncodedRow } from '../sink/targets.ts';
import { NULL_VALUE, UNCHANGED_VALUE, type WireTuple } from '../source/wire-tuples.ts';
import { isDigit, KIND_FIELDS, TIMESTAMP_DIGITS, TIMESTAMP_SEPARATORS } from './tuple-line.ts';
import { type Coercion, emptyValue } from './values.ts';

const KIND_CODE: Record<ColumnKind, number> = { text: 0, json: 0, int: 1, float: 2, bool: 3, timestamp: 4, textArray: 5 };
const KINDS = SOURCE_COLUMNS.map((c) => KIND_CODE[c.kind]);
/** What a SQL NULL becomes in each column, as field bytes. */
const NULL_FIELDS = SOURCE_COLUMNS.map((c) => Buffer.from(field(emptyValue(c.kind, c.nullable))));
const N = SOURCE_COLUMNS.length;
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const TABLE_FIELDS: Record<SourceTable, Buffer> = {
  TaskRun: Buffer.from(`\t${stringField('TaskRun')}\t`),
  task_run_v2: Buffer.from(`\t${stringField('task_run_v2')}\t`),
};
/** Room for the line around its values: separators, NULL fields, table, version, deleted flag. */
const LINE_OVERHEAD = NULL_FIELDS.reduce((sum, f) => sum + f.length + 1, 0) + 80;

const BACKSLASH = 0x5c;
const TAB = 0x09;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
/** Values at least this long are searched for escapes natively instead of byte by byte. */
const LONG_VALUE = 64;
/** Runs at least this long are copied natively; shorter ones byte by byte (a call costs more). */
const LONG_RUN = 24;
/** A tuple with more bytes to escape than this has every text value checked on its own. */
const MAX_ESCAPES = 64;

type ColumnIndexes = Int16Array;
const indexesByRelation = new WeakMap<WireTuple['columns'], ColumnIndexes>();

/** Where each mapped column sits in this relation's tuples (-1: the relation lacks it). */
function columnIndexes(columns: WireTuple['columns']): ColumnIndexes {
  let indexes = indexesByRelation.get(columns);
  if (!indexes) {
    const position = new Map(columns.map((c, i) => [c.name, i]));
    indexes = Int16Array.from(SOURCE_COLUMNS, (c) => position.get(c.source) ?? -1);
    indexesByRelation.set(columns, indexes);
  }
  return indexes;
}

const ID = SOURCE_COLUMNS.findIndex((c) => c.source === 'id');
const ORGANIZATION = SOURCE_COLUMNS.findIndex((c) => c.source === 'organizationId');
const SORT_KEY = SORT_KEY_SOURCE_COLUMNS.map((source) => SOURCE_COLUMNS.findIndex((c) => c.source === source));

/** `src[from, to)` as a TabSeparated string field at `out[at]`; returns the end. */
function copyEscaped(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
  if (to - from >= LONG_VALUE) {
    // Long values (JSON payloads) rarely hold a tab, line feed or carriage return: then only
    // backslashes are escaped, and the runs between them copied natively.
    const value = src.subarray(from, to);
    if (value.indexOf(TAB) < 0 && value.indexOf(LINE_FEED) < 0 && value.indexOf(CARRIAGE_RETURN) < 0) {
      let run = 0;
      for (let slash = value.indexOf(BACKSLASH); slash >= 0; slash = value.indexOf(BACKSLASH, run)) {
        at = copyPlain(value, run, slash + 1, out, at);
        out[at++] = BACKSLASH;
        run = slash + 1;
      }
      return copyPlain(value, run, value.length, out, at);
    }
  }
  for (let i = from; i < to; i++) {
    const byte = src[i] as number;
    if (byte === BACKSLASH || byte === TAB || byte === LINE_FEED || byte === CARRIAGE_RETURN) {
      out[at++] = BACKSLASH;
      out[at++] = byte === BACKSLASH ? BACKSLASH : byte === TAB ? 0x74 : byte === LINE_FEED ? 0x6e : 0x72;
    } else out[at++] = byte;
  }
  return at;
}

function copyPlain(src: Uint8Array, from: number, to: number, out: Buffer, at: number): number {
  if (to - from >= LONG_RUN) {
    out.set(new Uint8Array(src.buffer, src.byteOffset + from, to - from), at);
    return at + to - from;
  }
  for (let i = from; i < to; i++) out[at++] = src[i] as number;
  return at;
}

/**
 * Where the tuple holds a byte a text field escapes (backslash, tab, line feed, carriage return),
 * ascending, found natively over all its data at once; null when there are too many to be worth it.
 * Most tuples hold none or a few (JSON escapes), so most values are copied without a look at each byte.
 */
function escapePositions(tuple: WireTuple): number[] | null {
  const data = tuple.bytes.subarray(tuple.start, tuple.end);
  const positions: number[] = [];
  for (const byte of ESCAPED_BYTES) {
    for (let at = data.indexOf(byte); at >= 0; at = data.indexOf(byte, at + 1)) {
      if (positions.length === MAX_ESCAPES) return null;
      positions.push(tuple.start + at);
    }
  }
  return positions.sort((a, b) => a - b);
}
const ESCAPED_BYTES = [BACKSLASH, TAB, LINE_FEED, CARRIAGE_RETURN];

/** Whether one of the ascending `positions` lies in [from, to). */
function holdsAny(positions: readonly number[], from: number, to: number): boolean {
  let low = 0;
  let high = positions.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((positions[middle] as number) < from) low = middle + 1;
    else high = middle;
  }
  return low < positions.length && (positions[low] as number) < to;
}

/** A text of ASCII characters (digits, here) byte by byte: a write call costs more for a few bytes. */
function copyAscii(text: string, out: Buffer, at: number): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

const QUOTE = 0x27;
const COMMA = 0x2c;

/**
 * A one-dimensional array of plain ASCII elements (`{a,NULL,o'k}`) as ClickHouse's ['a','','o\'k'];
 * -1 for anything else (quoted, empty or spaced elements, escapes, nesting, non-ASCII), which
 * tuple-line.ts's textArrayField takes.
 */
function copyPlainArray(src: Buffer, from: number, to: number, out: Buffer, at: number): number {
  if (src[from] !== 0x7b || src[to - 1] !== 0x7d || to - from < 2) return -1;
  out[at++] = 0x5b; // [
  let item = from + 1;
  for (let i = item; i < to; i++) {
    const byte = src[i] as number;
    if (i < to - 1 && byte !== COMMA) {
      if (byte <= 0x20 || byte >= 0x7f || byte === 0x22 || byte === BACKSLASH || byte === 0x7b || byte === 0x7d) return -1;
      continue;
    }
    if (i === item) {
      if (to - from === 2) break; // {}
      return -1; // an empty element
    }
    if (item > from + 1) out[at++] = COMMA;
    out[at++] = QUOTE;
    // Array(String) holds no NULL: ''
    const isNull = i - item === 4 && src[item] === 0x4e && src[item + 1] === 0x55 && src[item + 2] === 0x4c && src[item + 3] === 0x4c;
    for (let k = isNull ? i : item; k < i; k++) {
      const char = src[k] as number;
      if (char === QUOTE) out[at++] = BACKSLASH;
      out[at++] = char;
    }
    out[at++] = QUOTE;
    item = i + 1;
  }
  out[at++] = 0x5d; // ]
  return at;
}

/** An int4 as String(Number(text)) prints it: no sign but '-', no leading zero, at most 9 digits. */
function isPlainInt(src: Buffer, from: number, to: number): boolean {
  const first = src[from] === 0x2d ? from + 1 : from;
  const digits = to - first;
  if (digits < 1 || digits > 9 || (src[first] === 0x30 && (digits > 1 || first > from))) return false;
  for (let i = first; i < to; i++) if (!isDigit(src[i] as number)) return false;
  return true;
}

/**
 * A float8 text that String(Number(text)) prints back unchanged: `-?(0|[1-9]\d*)(\.\d*[1-9])?`
 * with at most 15 significant digits (any such decimal survives the round trip through a double,
 * and its shortest form is itself), under 1e15 and not below 1e-6 (no exponent), and not -0.
 */
function isPlainFloat(src: Buffer, from: number, to: number): boolean {
  let i = src[from] === 0x2d ? from + 1 : from;
  const integerStart = i;
  while (i < to && isDigit(src[i] as number)) i++;
  const integerDigits = i - integerStart;
  if (integerDigits < 1 || integerDigits > 15 || (src[integerStart] === 0x30 && integerDigits > 1)) return false;
  const zeroInteger = integerDigits === 1 && src[integerStart] === 0x30;
  if (i === to) return !(zeroInteger && integerStart > from); // not -0
  if (src[i] !== 0x2e || src[to - 1] === 0x30) return false; // a fraction ending in a non-zero digit
  const fractionStart = ++i;
  while (i < to && isDigit(src[i] as number)) i++;
  if (i !== to || i === fractionStart) return false;
  let leadingZeros = 0;
  while (zeroInteger && src[fractionStart + leadingZeros] === 0x30) leadingZeros++;
  const significant = zeroInteger ? to - fractionStart - leadingZeros : integerDigits + to - fractionStart;
  return significant <= 15 && leadingZeros <= 5;
}

/** Postgres `timestamp` text in 1900-2299 with at most 6 fractional digits (as tuple-line.ts's timestampField takes it). */
function isPlainTimestamp(src: Buffer, from: number, length: number): boolean {
  if (length !== 19 && !(length >= 21 && length <= 26 && src[from + 19] === 0x2e)) return false;
  for (const at of TIMESTAMP_DIGITS) if (!isDigit(src[from + at] as number)) return false;
  for (const [at, byte] of TIMESTAMP_SEPARATORS) if (src[from + at] !== byte) return false;
  for (let at = 20; at < length; at++) if (!isDigit(src[from + at] as number)) return false;
  const century = (src[from] as number) * 10 + (src[from + 1] as number) - 0x210; // 10 * '0' + '0'
  return century >= 19 && century <= 22;
}

/** A timestamp in milliseconds: the first 23 bytes, padded with zeros when shorter. */
function copyTimestamp(src: Buffer, from: number, length: number, out: Buffer, at: number): number {
  at = copyPlain(src, from, from + Math.min(length, 23), out, at);
  if (length === 19) out[at++] = 0x2e;
  for (let pad = Math.max(length, 20); pad < 23; pad++) out[at++] = 0x30;
  return at;
}

const SOURCES = SOURCE_COLUMNS.map((c) => c.source);
const NULLABLE = SOURCE_COLUMNS.map((c) => c.nullable);
const FIELD_OF = SOURCE_COLUMNS.map((c) => KIND_FIELDS[c.kind]);

/** A value no fast path takes: decoded, and converted by tuple-line.ts's field function. */
function writeConverted(tuple: WireTuple, i: number, j: number, coercions: Coercion[], out: Buffer, at: number): number {
  const text = tuple.text(i) as string;
  const converted = (FIELD_OF[j] as (typeof FIELD_OF)[number])(text, NULLABLE[j] as boolean, SOURCES[j] as string, coercions);
  return at + out.write(converted, at, 'utf8');
}

/** The text of mapped column j ('' for NULL), as the row carries it for routing and stats. */
function carried(tuple: WireTuple, indexes: ColumnIndexes, j: number): string {
  return tuple.text(indexes[j] as number) ?? '';
}

/**
 * One row's line, written into `slab`; undefined when the tuple does not carry every mapped
 * column (a column the relation lacks, or an unchanged TOASTed value nobody sent).
 */
function encodeWireLine(
  tuple: WireTuple,
  table: SourceTable,
  versionText: string,
  deleted: boolean,
  coercions: Coercion[],
  slab: LineSlab,
): RoutedEncodedRow | undefined {
  const indexes = columnIndexes(tuple.columns);
  const { bytes: src, cells } = tuple;
  // Every value lies in the tuple's data: escaping at most doubles a text, and a conversion's
  // output stays within 3 bytes a byte + 24.
  const out = slab.reserve(LINE_OVERHEAD + 3 * (tuple.end - tuple.start) + 24 * N);
  let at = slab.start;
  const escapes = escapePositions(tuple);
  for (let j = 0; j < N; j++) {
    if (j > 0) out[at++] = TAB;
    const i = indexes[j] as number;
    const length = i < 0 ? UNCHANGED_VALUE : (cells[2 * i + 1] as number);
    // Not carried: the row path takes the whole change (what was written is left unfinished in
    // the slab, for the next line to overwrite).
    if (length === UNCHANGED_VALUE) return undefined;
    if (length === NULL_VALUE) {
      const nullField = NULL_FIELDS[j] as Buffer;
      at = copyPlain(nullField, 0, nullField.length, out, at);
      continue;
    }
    const from = cells[2 * i] as number;
    const to = from + length;
    switch (KINDS[j]) {
      case 0: // text, json
        at = escapes && !holdsAny(escapes, from, to) ? copyPlain(src, from, to, out, at) : copyEscaped(src, from, to, out, at);
        break;
      case 1: // int
        at = isPlainInt(src, from, to) ? copyPlain(src, from, to, out, at) : writeConverted(tuple, i, j, coercions, out, at);
        break;
      case 3: // bool
        if (length === 1 && src[from] === 0x74) at = copyPlain(TRUE, 0, 4, out, at);
        else if (length === 1 && src[from] === 0x66) at = copyPlain(FALSE, 0, 5, out, at);
        else at = writeConverted(tuple, i, j, coercions, out, at);
        break;
      case 4: // timestamp
        at = isPlainTimestamp(src, from, length)
          ? copyTimestamp(src, from, length, out, at)
          : writeConverted(tuple, i, j, coercions, out, at);
        break;
      case 5: {
        // text array
        const end = copyPlainArray(src, from, to, out, at);
        at = end >= 0 ? end : writeConverted(tuple, i, j, coercions, out, at);
        break;
      }
      default: // float: Number's own printing decides any other text
        at = isPlainFloat(src, from, to) ? copyPlain(src, from, to, out, at) : writeConverted(tuple, i, j, coercions, out, at);
    }
  }
  const tableField = TABLE_FIELDS[table] as Buffer;
  at = copyPlain(tableField, 0, tableField.length, out, at);
  at = copyAscii(versionText, out, at);
  out[at++] = TAB;
  out[at++] = deleted ? 0x31 : 0x30;
  return {
    line: slab.finish(at),
    sourceTable: table,
    deleted,
    runId: carried(tuple, indexes, ID),
    organizationId: carried(tuple, indexes, ORGANIZATION),
  };
}

/** Whether an update moves its row to another sort key (row.ts's sortKeyChanged, on the bytes). */
function sortKeyMoved(old: WireTuple, next: WireTuple): boolean {
  const indexes = columnIndexes(next.columns);
  for (const j of SORT_KEY) {
    const i = indexes[j] as number;
    if (i < 0) continue;
    const oldLength = old.cells[2 * i + 1] as number;
    const newLength = next.cells[2 * i + 1] as number;
    if (oldLength === UNCHANGED_VALUE || newLength === UNCHANGED_VALUE) continue;
    if (oldLength !== newLength) return true;
    if (newLength <= 0) continue; // both NULL (or both empty)
    const oldStart = old.cells[2 * i] as number;
    const newStart = next.cells[2 * i] as number;
    if (old.bytes.compare(next.bytes, newStart, newStart + newLength, oldStart, oldStart + oldLength) !== 0) return true;
  }
  return false;
}

export type WireChange =
  | { kind: 'insert'; new: WireTuple }
  | { kind: 'update'; old: WireTuple | null; new: WireTuple }
  | { kind: 'delete'; old: WireTuple | null };

/**
 * The lines of one change, as transformChange's rows encoded: a moved row's tombstone first.
 * Undefined when the change lacks values (a key-only delete, an unchanged TOASTed column without
 * the old row): those need the store's current row, which only transformChange's path reads.
 */
export function encodeWireChange(
  change: WireChange,
  table: SourceTable,
  version: bigint,
  slab: LineSlab = sharedLines,
): { rows: RoutedEncodedRow[]; coercions: Coercion[] } | undefined {
  const coercions: Coercion[] = [];
  const versionText = rankedVersion(table, version).toString();
  let row: RoutedEncodedRow | undefined;
  let tombstone: RoutedEncodedRow | undefined;
  switch (change.kind) {
    case 'insert':
      row = encodeWireLine(change.new, table, versionText, false, coercions, slab);
      break;
    case 'update':
      if (change.old && sortKeyMoved(change.old, change.new)) {
        tombstone = encodeWireLine(change.old, table, versionText, true, coercions, slab);
        if (!tombstone) return undefined;
      }
      row = encodeWireLine(change.new, table, versionText, false, coercions, slab);
      break;
    case 'delete':
      row = change.old ? encodeWireLine(change.old, table, versionText, true, coercions, slab) : undefined;
      break;
  }
  if (!row) return undefined;
  return { rows: tombstone ? [tombstone, row] : [row], coercions };
}
