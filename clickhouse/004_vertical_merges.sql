-- Merge runs column by column. The default (horizontal) merge reads every column of every part
-- at once; while a huge transaction streams in, the background merges of its parts were the
-- largest use of memory in the daemon's process (about 180 MiB with the in-process engine, see
-- bench/ huge-transaction). 8192 rows is one granule: every merge but the tiniest is vertical.
ALTER TABLE {{database}}.task_runs_v2 MODIFY SETTING vertical_merge_algorithm_min_rows_to_activate = 8192;
