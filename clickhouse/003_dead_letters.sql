-- Rows ClickHouse refused for their content (poison rows): kept with the error and the commit LSN
-- instead of blocking the stream or being dropped. runs-cdc dead-letters list|replay.
CREATE TABLE IF NOT EXISTS {{database}}.dead_letters
(
    source_table LowCardinality(String),
    run_id       String,
    _version     UInt128,
    commit_lsn   String,
    reason       LowCardinality(String),
    error        String,
    row          String,
    created_at   DateTime64(3, 'UTC'),
    replayed     Bool,
    revision     UInt64
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (source_table, run_id, _version);
