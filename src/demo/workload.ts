/**
 * Synthetic runs shaped like the task platform's, for the demo, tests and benchmarks. Rows are
 * written with json_populate_recordset, so any column can be set by name.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { SourceTable } from '../schema/columns.ts';
import { quoteIdent } from '../source/catalog.ts';
import { utcTimestamp } from '../utc.ts';

export type RunRow = Record<string, unknown> & { id: string; createdAt: string };

export const STATUSES = [
  'PENDING',
  'EXECUTING',
  'COMPLETED_SUCCESSFULLY',
  'COMPLETED_WITH_ERRORS',
  'CRASHED',
  'CANCELED',
  'TIMED_OUT',
] as const;
const TASKS = ['send-email', 'resize-image', 'sync-crm', 'generate-report', 'charge-card'];
const MACHINES = ['micro', 'small-1x', 'small-2x', 'medium-1x', 'large-1x'];

/** A KSUID-like (task_run_v2) or cuid-like (TaskRun) id: not ordered by creation time. */
export function runId(table: SourceTable): string {
  const random = randomBytes(12).toString('hex');
  return table === 'TaskRun' ? `c${random.slice(0, 24)}` : random.toUpperCase().slice(0, 27);
}

export interface RunOptions {
  table: SourceTable;
  index: number;
  organizationId?: string;
  projectId?: string;
  environmentId?: string;
  createdAt?: Date;
  payloadBytes?: number;
}

export function makeRun(options: RunOptions): RunRow {
  const { table, index } = options;
  const created = options.createdAt ?? new Date(Date.UTC(2026, 10, 1) + index * 1_000);
  const task = TASKS[index % TASKS.length] as string;
  return {
    id: runId(table),
    number: index,
    friendlyId: `run_${index.toString(36)}_${randomBytes(4).toString('hex')}`,
    engine: table === 'TaskRun' ? 'V1' : 'V2',
    status: 'PENDING',
    taskIdentifier: task,
    isTest: index % 10 === 0,
    payload: JSON.stringify({ index, blob: 'x'.repeat(options.payloadBytes ?? 64) }),
    payloadType: 'application/json',
    context: { attempt: 1 },
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    runtimeEnvironmentId: options.environmentId ?? 'env_prod',
    environmentType: 'PRODUCTION',
    projectId: options.projectId ?? 'proj_1',
    organizationId: options.organizationId ?? 'org_1',
    queue: `task/${task}`,
    masterQueue: 'main',
    region: 'eu-central-1',
    createdAt: utcTimestamp(created),
    updatedAt: utcTimestamp(created),
    runTags: [`user:${index % 50}`, `tier:${index % 3}`],
    taskVersion: '20261101.1',
    sdkVersion: '4.0.0',
    cliVersion: '4.0.0',
    machinePreset: MACHINES[index % MACHINES.length],
    queuedAt: utcTimestamp(created),
    usageDurationMs: 0,
    costInCents: 0,
    baseCostInCents: 0,
    priorityMs: 0,
    bulkActionGroupIds: [],
    depth: 0,
    metadataType: 'application/json',
    outputType: 'application/json',
  };
}

/** Insert rows in one statement (one transaction unless the caller has one open). */
export async function insertRuns(sql: pg.ClientBase, table: SourceTable, runs: readonly RunRow[]): Promise<void> {
  if (runs.length === 0) return;
  await sql.query(`INSERT INTO ${quoteIdent(table)} SELECT * FROM json_populate_recordset(NULL::${quoteIdent(table)}, $1::json)`, [
    JSON.stringify(runs),
  ]);
}

/** Move runs to a finished state, as the platform does when they complete. */
export async function completeRuns(sql: pg.ClientBase, table: SourceTable, ids: readonly string[], at: Date): Promise<void> {
  await sql.query(
    `UPDATE ${quoteIdent(table)} SET
       status = (ARRAY['COMPLETED_SUCCESSFULLY','COMPLETED_WITH_ERRORS','CRASHED']::"TaskRunStatus"[])[1 + (number % 3)],
       "startedAt" = $2::timestamp, "completedAt" = $2::timestamp + interval '1.5 seconds',
       "usageDurationMs" = 1500 + number % 1000, "costInCents" = (number % 100) / 10.0,
       output = '{"ok":true}', "updatedAt" = $2::timestamp + interval '1.5 seconds'
     WHERE id = ANY($1)`,
    [ids, utcTimestamp(at)],
  );
}

export async function deleteRuns(sql: pg.ClientBase, table: SourceTable, ids: readonly string[]): Promise<void> {
  await sql.query(`DELETE FROM ${quoteIdent(table)} WHERE id = ANY($1)`, [ids]);
}

/**
 * The platform's migration of legacy runs: copy each into task_run_v2 with the same id (and every
 * column, so the same sort key), in one statement; runs copied before are left as they are. From
 * then on the v2 copy is the run.
 */
export async function copyRunsToV2(sql: pg.ClientBase, ids: readonly string[]): Promise<void> {
  await sql.query(
    `INSERT INTO task_run_v2 SELECT (json_populate_record(NULL::task_run_v2, row_to_json(t))).* FROM "TaskRun" t WHERE id = ANY($1)
     ON CONFLICT (id) DO NOTHING`,
    [ids],
  );
}
