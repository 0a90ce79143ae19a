/**
 * `runs-cdc verify`: Postgres and ClickHouse compared without trusting either side's bookkeeping.
 *
 * Per table and time window of createdAt, each database computes the number of live runs and an
 * order-independent fingerprint: two sums of 32-bit slices of md5 over every mapped column (or,
 * with `columns: 'key'`, id, updatedAt, status, task and scope), the same text on both sides
 * (fingerprint.ts). Only these aggregates travel. A window that differs is halved until each side holds at most
 * `leafRows` runs; then the (id, fingerprint) lists of that small window are compared, naming
 * each run that is missing from ClickHouse, extra in it, or different (and in which columns). Memory stays bounded by
 * `leafRows` however large the tables are.
 *
 * One run, two tables (schema/version.ts): Postgres' side of "TaskRun" leaves out runs that
 * have a task_run_v2 copy (the copy is the run), and a legacy run ClickHouse knows as migrated
 * (its v2 copy was deleted, so the run is) is not named missing.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type pg from 'pg';
import type { SourceTable } from '../schema/columns.ts';
import { runsTableIn } from '../schema/tables.ts';
import { hasV2Copy, LEGACY_SUPERSEDED_VERSION } from '../schema/version.ts';
import { readRows } from '../sink/read.ts';
import { quoteIdent } from '../source/catalog.ts';
import { type ColumnSet, type Fingerprint, fingerprint } from './fingerprint.ts';

export type DifferenceKind = 'missing' | 'extra' | 'different';

export interface Difference {
  table: SourceTable;
  runId: string;
  kind: DifferenceKind;
  /** What each side holds, for a person: `updatedAt status` per side. */
  postgres?: string;
  clickhouse?: string;
  /** For `different`: the compared columns (Postgres names) whose values differ. */
  columns?: string[];
}

/** Which organizations' runs a target holds: with --routes, each target holds only some. */
export type OrganizationScope = { only: readonly string[] } | { except: readonly string[] };

export interface VerifyOptions {
  tables: readonly SourceTable[];
  /** createdAt bounds as epoch milliseconds (inclusive, exclusive); undefined: everything. */
  fromMs?: number;
  toMs?: number;
  windowSeconds: number;
  leafRows: number;
  /** Every mapped column (default) or the cheaper key set. */
  columns?: ColumnSet;
}

export interface VerifyReport {
  /** The columns compared (Postgres names). */
  columns: string[];
  tables: Array<{ table: SourceTable; postgresRuns: number; clickhouseRuns: number; windows: number; differingWindows: number }>;
  differences: Difference[];
  equal: boolean;
}

interface Aggregate {
  runs: number;
  h1: string;
  h2: string;
}

export class Verifier {
  private readonly table: string;
  /** The scope as a condition on each side ('TRUE'/'1' without one), its organizations bound as a
   * parameter ($1 in Postgres, {orgs} in ClickHouse). */
  private readonly pgScope: string;
  private readonly pgParams: unknown[];
  private readonly chScope: string;
  private readonly chParams: Record<string, unknown>;
  /** What the runs' hashes cover (set by run). */
  private f: Fingerprint = fingerprint('all');

  constructor(
    private readonly sql: pg.ClientBase,
    private readonly clickhouse: ClickHouseClient,
    database: string,
    scope?: OrganizationScope,
  ) {
    this.table = runsTableIn(database);
    if (!scope) {
      [this.pgScope, this.pgParams, this.chScope, this.chParams] = ['TRUE', [], '1', {}];
    } else if ('only' in scope) {
      [this.pgScope, this.pgParams] = [`"organizationId" = ANY($1::text[])`, [scope.only]];
      [this.chScope, this.chParams] = ['organization_id IN {orgs:Array(String)}', { orgs: scope.only }];
    } else {
      [this.pgScope, this.pgParams] = [`"organizationId" <> ALL($1::text[])`, [scope.except]];
      [this.chScope, this.chParams] = ['organization_id NOT IN {orgs:Array(String)}', { orgs: scope.except }];
    }
  }

  async run(options: VerifyOptions): Promise<VerifyReport> {
    this.f = fingerprint(options.columns ?? 'all');
    const report: VerifyReport = { columns: this.f.columns.map((c) => c.source), tables: [], differences: [], equal: true };
    for (const table of options.tables) {
      const pgWindows = await this.pgWindows(table, options);
      const chWindows = await this.chWindows(table, options);
      const keys = [...new Set([...pgWindows.keys(), ...chWindows.keys()])].sort((a, b) => a - b);
      let differing = 0;
      for (const window of keys) {
        const a = pgWindows.get(window);
        const b = chWindows.get(window);
        if (a && b && sameAggregate(a, b)) continue;
        const startMs = Math.max(window * options.windowSeconds * 1000, options.fromMs ?? Number.NEGATIVE_INFINITY);
        const endMs = Math.min((window + 1) * options.windowSeconds * 1000, options.toMs ?? Number.POSITIVE_INFINITY);
        const before = report.differences.length;
        await this.bisect(table, startMs, endMs, options.leafRows, report.differences, [a ?? NO_RUNS, b ?? NO_RUNS]);
        // Aggregates differ but no run does: legacy runs deleted through their v2 copy (see compareRuns).
        if (report.differences.length > before) differing += 1;
      }
      const count = (m: Map<number, Aggregate>) => [...m.values()].reduce((n, w) => n + w.runs, 0);
      report.tables.push({
        table,
        postgresRuns: count(pgWindows),
        clickhouseRuns: count(chWindows),
        windows: keys.length,
        differingWindows: differing,
      });
    }
    report.equal = report.differences.length === 0 && report.tables.every((t) => t.differingWindows === 0);
    return report;
  }

  /** `known`: the two sides' aggregates of this range, when the caller has them already. */
  private async bisect(
    table: SourceTable,
    startMs: number,
    endMs: number,
    leafRows: number,
    out: Difference[],
    known?: [Aggregate, Aggregate],
  ): Promise<void> {
    const [a, b] = known ?? (await Promise.all([this.pgAggregate(table, startMs, endMs), this.chAggregate(table, startMs, endMs)]));
    if (sameAggregate(a, b)) return;
    if ((a.runs <= leafRows && b.runs <= leafRows) || endMs - startMs <= 1) {
      out.push(...(await this.compareRuns(table, startMs, endMs)));
      return;
    }
    const middle = Math.floor((startMs + endMs) / 2);
    await this.bisect(table, startMs, middle, leafRows, out);
    await this.bisect(table, middle, endMs, leafRows, out);
  }

  private async compareRuns(table: SourceTable, startMs: number, endMs: number): Promise<Difference[]> {
    const { rows: pgRows } = await this.sql.query<{ id: string; h: string; shown: string }>(
      `SELECT id, ${this.f.pgH1}::text || ':' || ${this.f.pgH2}::text AS h, to_char("updatedAt", 'YYYY-MM-DD HH24:MI:SS.MS') || ' ' || status AS shown
         FROM ${quoteIdent(table)} ${this.f.pgLateral} WHERE ${pgRange(startMs, endMs)} AND ${this.pgScope} AND ${pgRule(table)}`,
      this.pgParams,
    );
    const chRows = await this.chQuery<{ id: string; h: string; shown: string }>(
      `SELECT run_id AS id, concat(toString(${this.f.chH1}), ':', toString(${this.f.chH2})) AS h, concat(toString(updated_at), ' ', toString(status)) AS shown
         FROM ${this.table} FINAL WHERE ${chRange(startMs, endMs)} AND source_table = {table:String} AND _is_deleted = 0 AND ${this.chScope}`,
      { table },
    );
    const inClickHouse = new Map(chRows.map((r) => [r.id, r]));
    const migrated =
      table === 'TaskRun' ? await this.migratedRunIds(pgRows.filter((r) => !inClickHouse.has(r.id)).map((r) => r.id)) : new Set();
    const differences: Difference[] = [];
    for (const row of pgRows) {
      const other = inClickHouse.get(row.id);
      if (!other && migrated.has(row.id)) continue; // its v2 copy was deleted, so the run is
      if (!other) differences.push({ table, runId: row.id, kind: 'missing', postgres: row.shown });
      else if (other.h !== row.h)
        differences.push({ table, runId: row.id, kind: 'different', postgres: row.shown, clickhouse: other.shown });
      inClickHouse.delete(row.id);
    }
    for (const row of inClickHouse.values()) differences.push({ table, runId: row.id, kind: 'extra', clickhouse: row.shown });
    await this.nameDifferingColumns(table, differences);
    return differences;
  }

  /** Fill in which columns differ for each `different` run, from one hash per column on each side. */
  private async nameDifferingColumns(table: SourceTable, differences: Difference[]): Promise<void> {
    const different = differences.filter((d) => d.kind === 'different');
    if (different.length === 0) return;
    const ids = different.map((d) => d.runId);
    const { rows: pgRows } = await this.sql.query<{ id: string; hashes: string[] }>(
      `SELECT id, ${this.f.pgColumnHashes} AS hashes FROM ${quoteIdent(table)} ${this.f.pgLateral} WHERE id = ANY($1::text[])`,
      [ids],
    );
    const chRows = await this.chQuery<{ id: string; hashes: string[] }>(
      `SELECT run_id AS id, ${this.f.chColumnHashes} AS hashes
         FROM ${this.table} FINAL WHERE source_table = {table:String} AND _is_deleted = 0 AND run_id IN {ids:Array(String)}`,
      { table, ids },
    );
    const inPostgres = new Map(pgRows.map((r) => [r.id, r.hashes]));
    const inClickHouse = new Map(chRows.map((r) => [r.id, r.hashes]));
    for (const difference of different) {
      const a = inPostgres.get(difference.runId);
      const b = inClickHouse.get(difference.runId);
      if (a && b) difference.columns = this.f.columns.filter((_, i) => a[i] !== b[i]).map((c) => c.source);
    }
  }

  private async pgWindows(table: SourceTable, options: VerifyOptions): Promise<Map<number, Aggregate>> {
    const { rows } = await this.sql.query<{ w: string; runs: string; h1: string; h2: string }>(
      `SELECT floor(extract(epoch FROM "createdAt") / ${options.windowSeconds})::bigint::text AS w, count(*)::text AS runs,
              coalesce(sum(${this.f.pgH1}), 0)::text AS h1, coalesce(sum(${this.f.pgH2}), 0)::text AS h2
         FROM ${quoteIdent(table)} ${this.f.pgLateral} WHERE ${pgRange(options.fromMs, options.toMs)} AND ${this.pgScope} AND ${pgRule(table)} GROUP BY 1`,
      this.pgParams,
    );
    return new Map(rows.map((r) => [Number(r.w), { runs: Number(r.runs), h1: r.h1, h2: r.h2 }]));
  }

  private async chWindows(table: SourceTable, options: VerifyOptions): Promise<Map<number, Aggregate>> {
    const rows = await this.chQuery<{ w: string; runs: string; h1: string; h2: string }>(
      `SELECT intDiv(toUnixTimestamp(created_at), ${options.windowSeconds}) AS w, count() AS runs, sum(${this.f.chH1}) AS h1, sum(${this.f.chH2}) AS h2
         FROM ${this.table} FINAL WHERE source_table = {table:String} AND _is_deleted = 0 AND ${chRange(options.fromMs, options.toMs)} AND ${this.chScope} GROUP BY w`,
      { table },
    );
    return new Map(rows.map((r) => [Number(r.w), { runs: Number(r.runs), h1: String(r.h1), h2: String(r.h2) }]));
  }

  private async pgAggregate(table: SourceTable, startMs: number, endMs: number): Promise<Aggregate> {
    const { rows } = await this.sql.query<{ runs: string; h1: string; h2: string }>(
      `SELECT count(*)::text AS runs, coalesce(sum(${this.f.pgH1}), 0)::text AS h1, coalesce(sum(${this.f.pgH2}), 0)::text AS h2
         FROM ${quoteIdent(table)} ${this.f.pgLateral} WHERE ${pgRange(startMs, endMs)} AND ${this.pgScope} AND ${pgRule(table)}`,
      this.pgParams,
    );
    const row = rows[0] as { runs: string; h1: string; h2: string };
    return { runs: Number(row.runs), h1: row.h1, h2: row.h2 };
  }

  private async chAggregate(table: SourceTable, startMs: number, endMs: number): Promise<Aggregate> {
    const [row] = await this.chQuery<{ runs: string; h1: string; h2: string }>(
      `SELECT count() AS runs, sum(${this.f.chH1}) AS h1, sum(${this.f.chH2}) AS h2
         FROM ${this.table} FINAL WHERE source_table = {table:String} AND _is_deleted = 0 AND ${chRange(startMs, endMs)} AND ${this.chScope}`,
      { table },
    );
    return { runs: Number(row?.runs ?? 0), h1: String(row?.h1 ?? '0'), h2: String(row?.h2 ?? '0') };
  }

  /** Runs ClickHouse holds a task_run_v2 row (or a superseded legacy row) of, deleted or not. */
  private async migratedRunIds(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.chQuery<{ run_id: string }>(
      `SELECT DISTINCT run_id FROM ${this.table} WHERE run_id IN {ids:Array(String)} AND _version >= {floor:UInt128}`,
      { ids, floor: LEGACY_SUPERSEDED_VERSION.toString() },
    );
    return new Set(rows.map((r) => r.run_id));
  }

  private async chQuery<T>(query: string, params: Record<string, unknown>): Promise<T[]> {
    return readRows<T>(this.clickhouse, { query, query_params: { ...params, ...this.chParams } });
  }
}

const NO_RUNS: Aggregate = { runs: 0, h1: '0', h2: '0' };

function sameAggregate(a: Aggregate, b: Aggregate): boolean {
  return a.runs === b.runs && a.h1 === b.h1 && a.h2 === b.h2;
}

/** The rule on Postgres' side: a "TaskRun" run with a task_run_v2 copy is that copy's run. */
function pgRule(table: SourceTable): string {
  return table === 'TaskRun' ? `NOT ${hasV2Copy()}` : 'TRUE';
}

/** Millisecond bounds as SQL literals: numbers only, never text from outside. */
function pgRange(fromMs?: number, toMs?: number): string {
  const parts = ['TRUE'];
  if (fromMs !== undefined && Number.isFinite(fromMs))
    parts.push(`"createdAt" >= to_timestamp(${Math.trunc(fromMs)} / 1000.0) AT TIME ZONE 'UTC'`);
  if (toMs !== undefined && Number.isFinite(toMs))
    parts.push(`"createdAt" < to_timestamp(${Math.trunc(toMs)} / 1000.0) AT TIME ZONE 'UTC'`);
  return parts.join(' AND ');
}

function chRange(fromMs?: number, toMs?: number): string {
  const parts = ['1'];
  if (fromMs !== undefined && Number.isFinite(fromMs))
    parts.push(`created_at >= fromUnixTimestamp64Milli(toInt64(${Math.trunc(fromMs)}), 'UTC')`);
  if (toMs !== undefined && Number.isFinite(toMs)) parts.push(`created_at < fromUnixTimestamp64Milli(toInt64(${Math.trunc(toMs)}), 'UTC')`);
  return parts.join(' AND ');
}
