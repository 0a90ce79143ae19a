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
 * - text[]: `<element count>:` and the elements (flattened, a NULL element is '') joined by U+001F,
 *   the unit separator: one pass in both databases, where framing each element needed a subquery
 *   per row in Postgres. Two arrays collide only if their elements contain U+001F themselves.
 * Large (TOASTed) values are read whole on both sides.
 *
 * In Postgres each value and the row's md5 are computed once per row, in LATERAL subqueries kept
 * from being inlined (OFFSET 0): written in place, every use of a value would compute it again.
 */

import { type ColumnMapping, SOURCE_COLUMNS } from '../schema/columns.ts';
import { quoteIdent } from '../source/catalog.ts';

/** Which columns verify compares: every mapped column, or the cheaper key set. */
export type ColumnSet = 'all' | 'key';

/** The key set (what verify compared before every column was): identity, scope, status, time. */
export const KEY_COLUMNS = ['id', 'updatedAt', 'status', 'taskIdentifier', 'organizationId', 'projectId', 'runtimeEnvironmentId'] as const;

function compareColumns(set: ColumnSet): readonly ColumnMapping[] {
  if (set === 'all') return SOURCE_COLUMNS;
  return SOURCE_COLUMNS.filter((c) => (KEY_COLUMNS as readonly string[]).includes(c.source));
}

const TIMESTAMP_EMPTY = "'1970-01-01 00:00:00.000'";

/** A column's value as text in Postgres, as ClickHouse should hold it (NULL stays NULL). */
function postgresValue(column: ColumnMapping): string {
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
      return `coalesce(cardinality(${c})::text || ':' || array_to_string(${c}, E'\\x1f', ''), '0:')`;
  }
}

/** The same column's value as text in ClickHouse (NULL stays NULL). */
function clickhouseValue(column: ColumnMapping): string {
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
      return `concat(toString(length(${t})), ':', arrayStringConcat(${t}, '\\x1f'))`;
  }
}

/** `<length>:<value>`, or `-` for NULL, of a value already computed (a column reference). */
const pgFramed = (v: string) => `coalesce(octet_length(${v})::text || ':' || ${v}, '-')`;
const chFramed = (column: ColumnMapping) => {
  const v = `(${clickhouseValue(column)})`;
  return `ifNull(concat(toString(length(${v})), ':', ${v}), '-')`;
};

export interface Fingerprint {
  columns: readonly ColumnMapping[];
  /** Joins after `FROM <runs table>` in Postgres: the compared values (fv) and the row's md5 (fp). */
  pgLateral: string;
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
  const values = columns.map((_, i) => `fv.v${i}`);
  const pgLateral = `CROSS JOIN LATERAL (SELECT ${columns.map((c, i) => `${postgresValue(c)} AS v${i}`).join(', ')} OFFSET 0) AS fv
    CROSS JOIN LATERAL (SELECT md5(concat(${values.map(pgFramed).join(', ')})) AS h OFFSET 0) AS fp`;
  const chText = `concat(${columns.map(chFramed).join(', ')})`;
  const pgSlice = (from: number) => `('x' || substr(fp.h, ${from}, 8))::bit(32)::bigint`;
  const chSlice = (from: number) => `reinterpretAsUInt32(reverse(unhex(substring(hex(MD5(${chText})), ${from}, 8))))`;
  return {
    columns,
    pgLateral,
    pgH1: pgSlice(1),
    pgH2: pgSlice(9),
    chH1: chSlice(1),
    chH2: chSlice(9),
    pgColumnHashes: `ARRAY[${values.map((v) => `md5(${pgFramed(v)})`).join(', ')}]`,
    chColumnHashes: `[${columns.map((c) => `lower(hex(MD5(${chFramed(c)})))`).join(', ')}]`,
  };
}
