/**
 * The text verify hashes per run, written once for each side so both produce the same bytes for a
 * run that was copied right. Pure: SQL expressions built from the column mapping (columns.ts).
 *
 * Each compared column becomes `<byte length>:<value>`, or `-` for NULL, and the row's text is
 * their concatenation in mapping order: no value can run into its neighbour, and NULL differs from
 * ''. Values are put into the form the transform (transform/values.ts) gives ClickHouse, so the
 * Postgres side says what ClickHouse should hold:
 * - text, json: the text itself (pgoutput and the backfill send jsonb's text output; ClickHouse
 *   keeps it byte for byte); a SQL NULL in a non-nullable column is its empty value;
 * - int, bool: decimal and `true`/`false`;
 * - float: the IEEE 754 bits in hex (big-endian), since the two servers print floats differently
 *   (`1e+21` and `1e21`); -0 is +0 and NaN/±Infinity are 0, as the transform stores them;
 * - timestamp: `YYYY-MM-DD HH:MM:SS.mmm`, truncated to milliseconds; outside 1900-2299 (or
 *   infinite) it is the empty value, as the transform stores it;
 * - text[]: flattened, each element `<length>:<value>` (a NULL element is ''), concatenated.
 * Large (TOASTed) values are read whole on both sides.
 */
import { quoteIdent } from '../source/preflight.ts';
import { type ColumnMapping, SOURCE_COLUMNS } from '../transform/columns.ts';

/** Which columns verify compares: every mapped column, or the cheaper key set. */
export type ColumnSet = 'all' | 'key';

/** The key set (what verify compared before every column was): identity, scope, status, time. */
export const KEY_COLUMNS = ['id', 'updatedAt', 'status', 'taskIdentifier', 'organizationId', 'projectId', 'runtimeEnvironmentId'] as const;

export function compareColumns(set: ColumnSet): readonly ColumnMapping[] {
  if (set === 'all') return SOURCE_COLUMNS;
  return SOURCE_COLUMNS.filter((c) => (KEY_COLUMNS as readonly string[]).includes(c.source));
}

const TIMESTAMP_EMPTY = "'1970-01-01 00:00:00.000'";

/** A column's value as text in Postgres, as ClickHouse should hold it (NULL stays NULL). */
export function postgresValue(column: ColumnMapping): string {
  const c = quoteIdent(column.source);
  const orEmpty = (empty: string) => (column.nullable ? 'NULL' : empty);
  switch (column.kind) {
    case 'text':
    case 'json':
      return column.nullable ? `${c}::text` : `coalesce(${c}::text, '')`;
    case 'int':
      return column.nullable ? `${c}::text` : `coalesce(${c}::text, '0')`;
    case 'bool':
      return column.nullable ? `${c}::text` : `coalesce(${c}::text, 'false')`;
    case 'float': {
      const zero = "'0000000000000000'";
      const bits = `encode(float8send(${c} + 0), 'hex')`; // + 0 turns -0 into +0
      return `CASE WHEN ${c} IS NULL THEN ${orEmpty(zero)} WHEN ${c} IN ('NaN', 'Infinity', '-Infinity') THEN ${orEmpty(zero)} ELSE ${bits} END`;
    }
    case 'timestamp':
      return `CASE WHEN ${c} IS NULL THEN ${orEmpty(TIMESTAMP_EMPTY)}
                   WHEN isfinite(${c}) AND ${c} >= '1900-01-01' AND ${c} < '2300-01-01' THEN to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.MS')
                   ELSE ${orEmpty(TIMESTAMP_EMPTY)} END`;
    case 'textArray':
      return `coalesce((SELECT string_agg(octet_length(coalesce(e, ''))::text || ':' || coalesce(e, ''), '' ORDER BY n)
                          FROM unnest(${c}) WITH ORDINALITY AS u(e, n)), '')`;
  }
}

/** The same column's value as text in ClickHouse (NULL stays NULL). */
export function clickhouseValue(column: ColumnMapping): string {
  const t = column.target;
  switch (column.kind) {
    case 'text':
    case 'json':
    case 'int':
    case 'bool':
    case 'timestamp':
      return `toString(${t})`;
    case 'float':
      return `lower(hex(reverse(reinterpretAsFixedString(${t}))))`;
    case 'textArray':
      return `arrayStringConcat(arrayMap(x -> concat(toString(length(x)), ':', x), ${t}))`;
  }
}

/** `<length>:<value>`, or `-` for NULL. */
const pgFramed = (column: ColumnMapping) => {
  const v = `(${postgresValue(column)})`;
  return `coalesce(octet_length(${v})::text || ':' || ${v}, '-')`;
};
const chFramed = (column: ColumnMapping) => {
  const v = `(${clickhouseValue(column)})`;
  return `ifNull(concat(toString(length(${v})), ':', ${v}), '-')`;
};

export interface Fingerprint {
  columns: readonly ColumnMapping[];
  /** The two 32-bit md5 slices of the row text, as bigint expressions, per side. */
  pgH1: string;
  pgH2: string;
  chH1: string;
  chH2: string;
  /** One md5 (hex) per compared column, in `columns` order, per side: names what differs. */
  pgColumnHashes: string;
  chColumnHashes: string;
}

export function fingerprint(set: ColumnSet): Fingerprint {
  const columns = compareColumns(set);
  const pgText = `concat(${columns.map(pgFramed).join(', ')})`;
  const chText = `concat(${columns.map(chFramed).join(', ')})`;
  const pgSlice = (from: number) => `('x' || substr(md5(${pgText}), ${from}, 8))::bit(32)::bigint`;
  const chSlice = (from: number) => `reinterpretAsUInt32(reverse(unhex(substring(hex(MD5(${chText})), ${from}, 8))))`;
  return {
    columns,
    pgH1: pgSlice(1),
    pgH2: pgSlice(9),
    chH1: chSlice(1),
    chH2: chSlice(9),
    pgColumnHashes: `ARRAY[${columns.map((c) => `md5(${pgFramed(c)})`).join(', ')}]`,
    chColumnHashes: `[${columns.map((c) => `lower(hex(MD5(${chFramed(c)})))`).join(', ')}]`,
  };
}
