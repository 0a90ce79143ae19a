/**
 * Rows <-> TabSeparated lines, the runs table's insert format. ClickHouse parses TabSeparated
 * faster than any JSON format, and a batch becomes one joined string rather than a stream of
 * per-row chunks (bench/run.ts measures both). Pure: no I/O.
 *
 * ClickHouse's rules: a string field escapes backslash, tab, line feed and carriage return; NULL
 * is \N; an Array(String) is written as ClickHouse writes it, ['a','b'], each element quoted with
 * backslash escapes, and the array text is not escaped again.
 */
import type { ClickHouseValue } from '../transform/values.ts';

export interface TabSeparatedColumn {
  readonly name: string;
  /** The ClickHouse type, as system.columns prints it: decoding restores numbers and booleans. */
  readonly type: string;
}

type Row = Readonly<Record<string, ClickHouseValue>>;

const FIELD_SPECIAL = /[\\\t\n\r]/;
const QUOTED_SPECIAL_ALL = /[\\'\t\n\r]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', "'": "\\'" };
const UNESCAPES: Readonly<Record<string, string>> = { t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', '0': '\0' };
const escapeChar = (char: string): string => ESCAPES[char] as string;
const NULL_FIELD = '\\N';

/** A string as a TabSeparated field: unchanged unless it holds a character to escape. */
export function stringField(value: string): string {
  if (!FIELD_SPECIAL.test(value)) return value;
  // One native replaceAll per character present (backslash first): several times faster than one
  // replace with a callback per match on JSON payloads full of escapes (bench/run.ts --rows=realistic).
  let escaped = value.includes('\\') ? value.replaceAll('\\', '\\\\') : value;
  if (escaped.includes('\t')) escaped = escaped.replaceAll('\t', '\\t');
  if (escaped.includes('\n')) escaped = escaped.replaceAll('\n', '\\n');
  if (escaped.includes('\r')) escaped = escaped.replaceAll('\r', '\\r');
  return escaped;
}

/** One Array(String) element, quoted as ClickHouse writes it. */
export function quotedItem(item: string): string {
  return `'${item.replace(QUOTED_SPECIAL_ALL, escapeChar)}'`;
}

/** Any value as its TabSeparated field. */
export function field(value: ClickHouseValue | undefined): string {
  if (value === null || value === undefined) return NULL_FIELD;
  switch (typeof value) {
    case 'string':
      return stringField(value);
    case 'number':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      return `[${value.map(quotedItem).join(',')}]`;
  }
}

/** One row as a TabSeparated line (without its line feed), fields in `columns` order. */
export function encodeTabSeparatedLine(row: Row, columns: readonly TabSeparatedColumn[]): string {
  // One join per row: building the line by += makes a rope that costs more to flatten later.
  const fields = new Array<string>(columns.length);
  for (let i = 0; i < columns.length; i++) fields[i] = field(row[(columns[i] as TabSeparatedColumn).name]);
  return fields.join('\t');
}

function unescapeField(text: string): string {
  return text.includes('\\') ? text.replace(/\\(.)/gs, (_, char: string) => UNESCAPES[char] ?? char) : text;
}

/** `['a','b\'c']` -> ['a', "b'c"]. */
function parseArray(text: string): string[] {
  const items: string[] = [];
  let i = 1; // past '['
  while (i < text.length && text[i] !== ']') {
    if (text[i] === ',') i += 1;
    let item = '';
    i += 1; // past the opening quote
    while (text[i] !== "'") {
      if (text[i] === '\\') {
        i += 1;
        item += UNESCAPES[text[i] as string] ?? text[i];
      } else item += text[i];
      i += 1;
    }
    items.push(item);
    i += 1; // past the closing quote
  }
  return items;
}

function decodeField(text: string, type: string): ClickHouseValue {
  if (text === NULL_FIELD) return null;
  const base = type.replace(/^(LowCardinality\()?(Nullable\()?/, '');
  if (base.startsWith('Array(')) return parseArray(text);
  if (/^(U?Int(8|16|32)|Float(32|64))\b/.test(base)) return Number(text);
  if (base.startsWith('Bool')) return text === 'true';
  return unescapeField(text);
}

/** A line from encodeTabSeparatedLine back to the row (dead letters keep rows, not lines). */
export function decodeTabSeparatedLine(line: string, columns: readonly TabSeparatedColumn[]): Record<string, ClickHouseValue> {
  const fields = line.split('\t'); // escaped fields hold no raw tab
  const row: Record<string, ClickHouseValue> = {};
  columns.forEach((column, i) => {
    row[column.name] = decodeField(fields[i] ?? NULL_FIELD, column.type);
  });
  return row;
}
