/**
 * Reading the runs tables for the backfill: keyset pages in `("createdAt", id)` order, range
 * estimates and splits from the planner's statistics. Every value comes back as the text Postgres
 * prints (the same form pgoutput sends), so the backfill and the daemon share one transform.
 */
import type pg from 'pg';
import parsePostgresArray from 'postgres-array';
import type { Logger } from '../logger.ts';
import { SOURCE_COLUMNS, type SourceTable } from '../schema/columns.ts';
import { hasV2Copy } from '../schema/version.ts';
import { encodeRoutedRow, type RoutedEncodedRow } from '../sink/targets.ts';
import { quoteIdent } from '../source/catalog.ts';
import { connectPostgres } from '../source/connection.ts';
import { buildRow, type ClickHouseRow, supersededLegacyTombstone, type Tuple } from '../transform/row.ts';
import { encodeTupleLine } from '../transform/tuple-line.ts';
import type { Coercion } from '../transform/values.ts';
import type { Cursor } from './cursor.ts';

/** `"createdAt"` in [from, to); null is unbounded. Bounds are Postgres timestamp text. */
export interface TimeRange {
  from: string | null;
  to: string | null;
}

/** Every mapped column, quoted, in mapping order: what a page (or any full-row read) selects. */
export const SELECT_LIST = SOURCE_COLUMNS.map((c) => quoteIdent(c.source)).join(', ');
const rawText = (value: string) => value;

/** Set ('t') on a "TaskRun" row read while its run has a task_run_v2 copy: the copy is the run. */
const MIGRATED = '__migrated';
/** What a read of `table` selects besides the mapped columns: for "TaskRun", whether the run has
 * a task_run_v2 copy (an index lookup on the v2 primary key per row), read in the same statement
 * so the two tables are seen at one moment. */
function migratedColumn(table: SourceTable): string {
  return table === 'TaskRun' ? `, ${hasV2Copy()} AS "${MIGRATED}"` : '';
}

/** A connection whose results are raw text, with the timestamp format cursors are written in. */
export async function connectReader(url: string): Promise<pg.Client> {
  const client = await connectPostgres(url, { types: { getTypeParser: () => rawText } });
  await client.query(`SET application_name = 'runs-cdc backfill'; SET DateStyle = 'ISO, YMD'`);
  return client;
}

/** WHERE conditions (and their parameters) for a range, optionally after a cursor. */
function rangeConditions(range: TimeRange, cursor: Cursor | null): { where: string; params: string[] } {
  const conditions: string[] = [];
  const params: string[] = [];
  const param = (value: string) => {
    params.push(value);
    return `$${params.length}`;
  };
  // Compared in Postgres as ("createdAt", id) rows: the timestamp at full precision and the id
  // under the column's own collation, which is the order of the index and of ORDER BY below.
  if (cursor) conditions.push(`("createdAt", "id") > (${param(cursor.createdAt)}::timestamp, ${param(cursor.id)})`);
  if (range.from !== null) conditions.push(`"createdAt" >= ${param(range.from)}::timestamp`);
  if (range.to !== null) conditions.push(`"createdAt" < ${param(range.to)}::timestamp`);
  return { where: conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

/** The next page: at most `limit` rows after `cursor`, in ("createdAt", id) order. */
export async function readPage(
  client: pg.ClientBase,
  table: SourceTable,
  range: TimeRange,
  cursor: Cursor | null,
  limit: number,
): Promise<Tuple[]> {
  const { where, params } = rangeConditions(range, cursor);
  const { rows } = await client.query<Record<string, string | null>>(
    `SELECT ${SELECT_LIST}${migratedColumn(table)} FROM ${quoteIdent(table)} ${where} ORDER BY "createdAt", "id" LIMIT ${Math.trunc(limit)}`,
    params,
  );
  return rows;
}

/** The ClickHouse rows of a page read here, at `version`; each value that had to be coerced is
 * logged, as the daemon does. A legacy row read while its run had a task_run_v2 copy becomes a
 * tombstone that keeps every legacy row on its key hidden (see schema/version.ts). */
export function rowsOfPage(page: readonly Tuple[], table: SourceTable, version: bigint, log: Logger): ClickHouseRow[] {
  const coercions: Coercion[] = [];
  const rows = page.map((tuple) => backfillRow(tuple, table, version, coercions));
  logCoercions(log, table, coercions);
  return rows;
}

/** One row read here, at `version`: a legacy row whose run has a task_run_v2 copy becomes its tombstone. */
function backfillRow(tuple: Tuple, table: SourceTable, version: bigint, coercions: Coercion[]): ClickHouseRow {
  const row = buildRow(tuple, table, version, false, coercions);
  return tuple[MIGRATED] === 't' ? supersededLegacyTombstone(row) : row;
}

function logCoercions(log: Logger, table: SourceTable, coercions: readonly Coercion[]): void {
  for (const coercion of coercions) log.warn({ table, ...coercion }, 'a value could not be stored as it is; stored NULL or empty instead');
}

/**
 * `rowsOfPage` encoded for the insert, through the compiled tuple -> line path the daemon uses
 * (transform/tuple-line.ts: the same lines, without a row object per run). Superseded legacy rows
 * (rare) take the row path.
 */
export function encodedRowsOfPage(page: readonly Tuple[], table: SourceTable, version: bigint, log: Logger): RoutedEncodedRow[] {
  const coercions: Coercion[] = [];
  const rows = page.map((tuple): RoutedEncodedRow => {
    if (tuple[MIGRATED] !== 't') {
      const encoded = encodeTupleLine(tuple, table, version, coercions);
      if (encoded) return encoded;
    }
    return encodeRoutedRow(backfillRow(tuple, table, version, coercions));
  });
  logCoercions(log, table, coercions);
  return rows;
}

/** The rows with these ids (any order), for re-copying single runs. */
export async function readPageByIds(client: pg.ClientBase, table: SourceTable, ids: readonly string[]): Promise<Tuple[]> {
  const { rows } = await client.query<Record<string, string | null>>(
    `SELECT ${SELECT_LIST}${migratedColumn(table)} FROM ${quoteIdent(table)} WHERE id = ANY($1)`,
    [ids],
  );
  return rows;
}

/** The planner's row estimate for a range (from table statistics; no scan). */
export async function estimateRows(client: pg.ClientBase, table: SourceTable, range: TimeRange): Promise<number> {
  const { where, params } = rangeConditions(range, null);
  const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(
    `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${quoteIdent(table)} ${where}`,
    params,
  );
  const text = rows[0]?.['QUERY PLAN'] ?? '[]';
  // json arrives parsed or as text, depending on the connection's type parsers.
  const plan = (typeof text === 'string' ? JSON.parse(text) : text) as Array<{ Plan: { 'Plan Rows': number } }>;
  return Math.round(plan[0]?.Plan['Plan Rows'] ?? 0);
}

export async function countRows(client: pg.ClientBase, table: SourceTable, range: TimeRange): Promise<number> {
  const { where, params } = rangeConditions(range, null);
  const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteIdent(table)} ${where}`, params);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Split a range into at most `parts` sub-ranges of roughly equal row counts: cut at quantiles of
 * the "createdAt" histogram ANALYZE keeps in pg_stats (equal-count buckets), or, for a table never
 * analyzed, at equal time steps between its first and last row. No full count.
 */
export async function splitRange(client: pg.ClientBase, table: SourceTable, range: TimeRange, parts: number): Promise<TimeRange[]> {
  if (parts <= 1) return [range];
  const cuts = (await histogramCuts(client, table, range, parts)) ?? (await linearCuts(client, table, range, parts));
  const bounds = [range.from, ...cuts, range.to];
  return bounds.slice(0, -1).map((from, i) => ({ from, to: bounds[i + 1] ?? null }));
}

/** Distinct, increasing timestamps strictly inside the range (text), or undefined without stats. */
async function histogramCuts(client: pg.ClientBase, table: SourceTable, range: TimeRange, parts: number): Promise<string[] | undefined> {
  const { rows } = await client.query<{ bounds: string | null }>(
    `SELECT histogram_bounds::text AS bounds FROM pg_stats
      WHERE schemaname = current_schema() AND tablename = $1 AND attname = 'createdAt'`,
    [table],
  );
  const text = rows[0]?.bounds;
  if (!text) return undefined;
  const bounds = (parsePostgresArray.parse(text, (v) => v) as string[]).filter(Boolean);
  return insideRange(client, pickQuantiles(bounds, parts), range);
}

function pickQuantiles(sorted: readonly string[], parts: number): string[] {
  const picks: string[] = [];
  for (let k = 1; k < parts; k++) {
    const value = sorted[Math.round((k * (sorted.length - 1)) / parts)];
    if (value !== undefined) picks.push(value);
  }
  return picks;
}

async function linearCuts(client: pg.ClientBase, table: SourceTable, range: TimeRange, parts: number): Promise<string[]> {
  const { where, params } = rangeConditions(range, null);
  const { rows } = await client.query<{ cut: string | null }>(
    `WITH span AS (SELECT min("createdAt") AS lo, max("createdAt") AS hi FROM ${quoteIdent(table)} ${where})
     SELECT (lo + (hi - lo) * k / ${Math.trunc(parts)})::text AS cut FROM span, generate_series(1, ${Math.trunc(parts) - 1}) AS k
      WHERE lo IS NOT NULL ORDER BY k`,
    params,
  );
  return insideRange(
    client,
    rows.map((r) => r.cut).filter((c): c is string => c !== null),
    range,
  );
}

/** The distinct cut points strictly inside the range, in order, as Postgres prints them. */
async function insideRange(client: pg.ClientBase, cuts: string[], range: TimeRange): Promise<string[]> {
  if (cuts.length === 0) return [];
  const { rows } = await client.query<{ cut: string }>(
    `SELECT DISTINCT c::text AS cut, c FROM unnest($1::timestamp[]) AS c
      WHERE ($2::timestamp IS NULL OR c > $2::timestamp) AND ($3::timestamp IS NULL OR c < $3::timestamp)
      ORDER BY c`,
    [cuts, range.from, range.to],
  );
  return rows.map((r) => r.cut);
}

/** The later of two timestamps (either may be null), as Postgres prints it. */
export async function laterOf(client: pg.ClientBase, a: string | null, b: string | null): Promise<string | null> {
  const { rows } = await client.query<{ t: string | null }>('SELECT GREATEST($1::timestamp, $2::timestamp)::text AS t', [a, b]);
  return rows[0]?.t ?? null;
}
