-- The task platform's runs tables, as runs-cdc expects them. "TaskRun" is the legacy table
-- (cuid ids), task_run_v2 its successor (KSUID ids); both have the same columns.
-- Timestamps are timestamp(3) without time zone holding UTC, as the platform writes them.

DO $$ BEGIN
  CREATE TYPE "TaskRunStatus" AS ENUM (
    'DELAYED', 'PENDING', 'PENDING_VERSION', 'WAITING_FOR_DEPLOY', 'DEQUEUED', 'EXECUTING',
    'WAITING_TO_RESUME', 'RETRYING_AFTER_FAILURE', 'PAUSED', 'CANCELED', 'INTERRUPTED',
    'COMPLETED_SUCCESSFULLY', 'COMPLETED_WITH_ERRORS', 'SYSTEM_FAILURE', 'CRASHED', 'EXPIRED',
    'TIMED_OUT');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

CREATE TABLE IF NOT EXISTS "TaskRun" (
  "id"                      text PRIMARY KEY,
  "number"                  integer NOT NULL DEFAULT 0,
  "friendlyId"              text NOT NULL,
  "engine"                  text NOT NULL DEFAULT 'V1',
  "status"                  "TaskRunStatus" NOT NULL DEFAULT 'PENDING',
  "statusReason"            text,
  "idempotencyKey"          text,
  "idempotencyKeyExpiresAt" timestamp(3),
  "idempotencyKeyOptions"   jsonb,
  "taskIdentifier"          text NOT NULL,
  "isTest"                  boolean NOT NULL DEFAULT false,
  "payload"                 text NOT NULL,
  "payloadType"             text NOT NULL DEFAULT 'application/json',
  "context"                 jsonb,
  "traceContext"            jsonb,
  "traceId"                 text NOT NULL,
  "spanId"                  text NOT NULL,
  "runtimeEnvironmentId"    text NOT NULL,
  "environmentType"         text,
  "projectId"               text NOT NULL,
  "organizationId"          text NOT NULL,
  "queue"                   text NOT NULL,
  "lockedQueueId"           text,
  "masterQueue"             text NOT NULL DEFAULT 'main',
  "region"                  text,
  "attemptNumber"           integer,
  "createdAt"               timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  "updatedAt"               timestamp(3) NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
  "runTags"                 text[] NOT NULL DEFAULT '{}',
  "taskVersion"             text,
  "sdkVersion"              text,
  "cliVersion"              text,
  "startedAt"               timestamp(3),
  "executedAt"              timestamp(3),
  "completedAt"             timestamp(3),
  "machinePreset"           text,
  "usageDurationMs"         integer NOT NULL DEFAULT 0,
  "costInCents"             double precision NOT NULL DEFAULT 0,
  "baseCostInCents"         double precision NOT NULL DEFAULT 0,
  "lockedAt"                timestamp(3),
  "lockedById"              text,
  "priorityMs"              integer NOT NULL DEFAULT 0,
  "concurrencyKey"          text,
  "delayUntil"              timestamp(3),
  "queuedAt"                timestamp(3),
  "ttl"                     text,
  "expiredAt"               timestamp(3),
  "maxAttempts"             integer,
  "scheduleId"              text,
  "bulkActionGroupIds"      text[] NOT NULL DEFAULT '{}',
  "rootTaskRunId"           text,
  "parentTaskRunId"         text,
  "batchId"                 text,
  "depth"                   integer NOT NULL DEFAULT 0,
  "metadata"                text,
  "metadataType"            text NOT NULL DEFAULT 'application/json',
  "output"                  text,
  "outputType"              text NOT NULL DEFAULT 'application/json',
  "error"                   jsonb,
  "maxDurationInSeconds"    integer,
  "queueTimestamp"          timestamp(3),
  "annotations"             jsonb,
  "planType"                text,
  "isWarmStart"             boolean
);

CREATE TABLE IF NOT EXISTS task_run_v2 (LIKE "TaskRun" INCLUDING ALL);

-- The backfill pages each table by ("createdAt", id); this index serves exactly that order.
CREATE INDEX IF NOT EXISTS "TaskRun_createdAt_id_idx" ON "TaskRun" ("createdAt", "id");
CREATE INDEX IF NOT EXISTS task_run_v2_created_at_id_idx ON task_run_v2 ("createdAt", "id");

-- FULL identity makes updates and deletes carry the whole old row: deletes can be tombstoned
-- under their ClickHouse sort key and unchanged TOASTed columns keep their value.
ALTER TABLE "TaskRun" REPLICA IDENTITY FULL;
ALTER TABLE task_run_v2 REPLICA IDENTITY FULL;
