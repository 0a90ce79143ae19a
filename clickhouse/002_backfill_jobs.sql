-- Backfill jobs and their checkpoints. Both are ReplacingMergeTree on an explicit revision (never
-- the wall clock): the newest revision of a job, and of each sub-range, is the current one.
CREATE TABLE IF NOT EXISTS {{database}}.backfill_jobs
(
    job_id      String,
    revision    UInt64,
    status      LowCardinality(String),
    mode        LowCardinality(String),
    params      String,
    rows_copied UInt64,
    message     String,
    created_at  DateTime64(3, 'UTC'),
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY job_id;

-- One row per (job, table, sub-range); seq counts its checkpoints, so a resume's checkpoints
-- replace the killed run's.
CREATE TABLE IF NOT EXISTS {{database}}.backfill_checkpoints
(
    job_id       String,
    source_table LowCardinality(String),
    range_index  UInt32,
    seq          UInt64,
    range_from   Nullable(String),
    range_to     Nullable(String),
    cursor       Nullable(String),
    rows_copied  UInt64,
    estimated    UInt64,
    done         Bool,
    updated_at   DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY (job_id, source_table, range_index);
