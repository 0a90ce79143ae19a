-- Merge at most 10 parts at once (the default is 100). While a huge transaction streams in, parts
-- pile up faster than merges fold them, and one merge then reads a buffer per part for each column
-- it gathers: with realistic rows (~4 KB) the engine's memory grew with the transaction's size
-- (bench/ huge-transaction, one transaction of 200k rows +600 MiB, of 1M rows +846 MiB). Merging
-- at most 10 parts bounds that (+649 / +670 MiB); the merge selector rarely picks more than 10
-- parts of similar size anyway, so steady replication merges as before.
ALTER TABLE {{database}}.task_runs_v2 MODIFY SETTING max_parts_to_merge_at_once = 10;
