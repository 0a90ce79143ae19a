-- Which replication slot the runs table's rows came from: one row per slot name, the newest
-- revision current. `epoch` counts the slots of that name runs-cdc has streamed from (a recreated
-- slot is the next epoch), `created_lsn` is where the slot's stream began, and `repair_pending`
-- is set from the moment a slot is recreated over rows ClickHouse already held until the repair
-- of the gap has ended (a restart repeats it). replicate refuses to start when the slot is missing
-- or lost while this table or the runs table holds anything (see src/replication/slot-guard.ts).
CREATE TABLE IF NOT EXISTS {{database}}.replication_slots
(
    slot           String,
    epoch          UInt32,
    created_lsn    String,
    created_at     DateTime64(3, 'UTC'),
    repair_pending Bool,
    revision       UInt64
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY slot;
