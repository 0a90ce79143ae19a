/**
 * The rows the benchmarks write, as SQL over `g` (generate_series): `--rows=thin` (the default,
 * 15 of 64 columns, ~300 bytes) or `--rows=realistic` (all 64 columns: a ~2 KB JSON payload,
 * output and metadata with JSON escapes, 3-5 tags, every timestamp set; 1 run in 10 carries a
 * 6.4 KB output that Postgres stores out of line, TOASTed, so updates send it as "unchanged").
 */
import type pg from 'pg';

export type RowShape = 'thin' | 'realistic';

const THIN_COLUMNS = `id, "friendlyId", "taskIdentifier", payload, "traceId", "spanId", "runtimeEnvironmentId",
  "projectId", "organizationId", queue, status, "runTags", "createdAt", "startedAt", "costInCents"`;
const THIN = `'run_' || g, 'friendly_' || g, 'task-' || (g % 20), '{"n":' || g || ',"body":"' || repeat('x', 200) || '"}',
  md5(g::text), left(md5(g::text), 16), 'env_' || (g % 3), 'proj_' || (g % 5), 'org_1', 'task/q', 'COMPLETED_SUCCESSFULLY',
  ARRAY['user:' || (g % 100)], timestamp '2026-06-01' + g * interval '10 ms', timestamp '2026-06-01' + g * interval '10 ms',
  (g % 100) / 10.0`;

const REALISTIC_COLUMNS = `id, number, "friendlyId", engine, status, "statusReason", "idempotencyKey", "idempotencyKeyExpiresAt",
  "idempotencyKeyOptions", "taskIdentifier", "isTest", payload, "payloadType", context, "traceContext", "traceId", "spanId",
  "runtimeEnvironmentId", "environmentType", "projectId", "organizationId", queue, "lockedQueueId", "masterQueue", region,
  "attemptNumber", "createdAt", "updatedAt", "runTags", "taskVersion", "sdkVersion", "cliVersion", "startedAt", "executedAt",
  "completedAt", "machinePreset", "usageDurationMs", "costInCents", "baseCostInCents", "lockedAt", "lockedById", "priorityMs",
  "concurrencyKey", "delayUntil", "queuedAt", ttl, "expiredAt", "maxAttempts", "scheduleId", "bulkActionGroupIds",
  "rootTaskRunId", "parentTaskRunId", "batchId", depth, metadata, "metadataType", output, "outputType", error,
  "maxDurationInSeconds", "queueTimestamp", annotations, "planType", "isWarmStart"`;
const T0 = `(timestamp '2026-06-01' + g * interval '10 ms')`;
const REALISTIC = `'run_' || g, g, 'friendly_' || g, 'V2', 'PENDING', 'queued by the api', md5('idem' || g),
  ${T0} + interval '1 day', '{"scope": "run", "ttl": "1d"}'::jsonb, 'task-' || (g % 20), g % 50 = 0,
  '{"n":' || g || ',"user":"u' || (g % 1000) || '","note":"line one\\nline two \\"quoted\\"","blob":"' || repeat(md5(g::text), 58) || '"}',
  'application/json',
  ('{"organization": {"id": "org_1", "slug": "acme"}, "project": {"id": "proj_' || (g % 5) || '", "name": "web"}, "environment": {"type": "PRODUCTION"}, "attempt": {"number": 1}}')::jsonb,
  ('{"traceparent": "00-' || md5(g::text) || '-' || left(md5(g::text), 16) || '-01"}')::jsonb,
  md5(g::text), left(md5(g::text), 16), 'env_' || (g % 3), 'PRODUCTION', 'proj_' || (g % 5), 'org_1', 'task/q-' || (g % 20),
  'lq_' || (g % 20), 'main', 'eu-central-1', 1, ${T0}, ${T0} + interval '2 s',
  ARRAY['user:' || (g % 100), 'env:prod', 'tier:' || (g % 3)] || CASE WHEN g % 2 = 0 THEN ARRAY['batch:' || (g % 7), 'o''reilly'] ELSE '{}'::text[] END,
  '20260601.' || (g % 9), '3.3.17', '3.3.17', ${T0} + interval '100 ms', ${T0} + interval '120 ms', ${T0} + interval '2 s',
  'small-1x', g % 60000, (g % 100) / 10.0, (g % 100) / 20.0, ${T0} + interval '90 ms', 'worker_' || (g % 10), 0,
  'ck_' || (g % 50), ${T0}, ${T0} + interval '50 ms', '10m', ${T0} + interval '1 day', 3, 'sched_' || (g % 5),
  ARRAY['bulk_' || (g % 4)], 'run_' || (g - g % 10), 'run_' || (g - g % 10), 'batch_' || (g / 100), g % 3,
  '{"progress":' || (g % 100) || ',"steps":["fetch","parse","store"],"note":"tab\\there","by":"' || md5('m' || g) || '"}',
  'application/json',
  CASE WHEN g % 10 = 0 THEN (SELECT string_agg(md5(g::text || i), '') FROM generate_series(1, 200) i)
       ELSE '{"result":"ok","items":' || (g % 97) || ',"log":"' || repeat('step done; ', 20) || '"}' END,
  'application/json',
  ('{"name": "Error", "message": "attempt ' || (g % 3) || ' failed", "stackTrace": "at run (task.ts:1)\\n  at main"}')::jsonb,
  3600, ${T0} + interval '10 ms', '{"triggerSource": "api", "rootTriggerSource": "api"}'::jsonb, 'pro', g % 2 = 0`;

/** `--name=value` from the command line, one of `choices` (the first when absent); exits 2 on any other. */
function choiceArg<Choice extends string>(argv: readonly string[], name: string, choices: readonly [Choice, ...Choice[]]): Choice {
  const value = argv.find((arg) => arg.startsWith(`${name}=`))?.slice(name.length + 1) ?? choices[0];
  if (!(choices as readonly string[]).includes(value)) {
    console.error(`unknown ${name}=${value}: use ${choices.map((c) => `${name}=${c}`).join(' or ')}`);
    process.exit(2);
  }
  return value as Choice;
}

export function rowShape(argv: readonly string[]): RowShape {
  return choiceArg(argv, '--rows', ['thin', 'realistic']);
}

export type Mix = 'inserts' | 'updates';

/** `--mix=updates`: the update-heavy mix (each run inserted, then STATUS_ROUNDS updates of it, 1 in
 * 10 deleted) where a scenario writes runs; `--mix=inserts` (the default) inserts only. */
export function mixArg(argv: readonly string[]): Mix {
  return choiceArg(argv, '--mix', ['inserts', 'updates']);
}

export function shapeSql(shape: RowShape): { columns: string; generated: string } {
  return shape === 'thin' ? { columns: THIN_COLUMNS, generated: THIN } : { columns: REALISTIC_COLUMNS, generated: REALISTIC };
}

/** The ids of runs from..to. */
export function runIds(from: number, to: number, every = 1): string[] {
  const ids: string[] = [];
  for (let g = from; g <= to; g++) if (g % every === 0) ids.push(`run_${g}`);
  return ids;
}

/** Statuses the update-heavy mix moves every run through. */
export const STATUS_ROUNDS = ['DEQUEUED', 'EXECUTING', 'COMPLETED_SUCCESSFULLY'] as const;

/** One status update of runs from..to, one transaction (the payload and TOASTed output are unchanged). */
export function updateStatus(sql: pg.ClientBase, from: number, to: number, status: string): Promise<unknown> {
  return sql.query(`UPDATE task_run_v2 SET status = $2, "updatedAt" = "updatedAt" + interval '1 s' WHERE id = ANY($1::text[])`, [
    runIds(from, to),
    status,
  ]);
}

/** Delete 1 run in 10 of from..to, one transaction. */
export function deleteTenth(sql: pg.ClientBase, from: number, to: number): Promise<unknown> {
  return sql.query('DELETE FROM task_run_v2 WHERE id = ANY($1::text[])', [runIds(from, to, 10)]);
}
