-- The publication runs-cdc subscribes to. `runs-cdc replicate` creates it when missing; this file
-- is for operators who prefer to create it themselves. The name must match --publication.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'runs_cdc') THEN
    CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2
      WITH (publish = 'insert, update, delete, truncate');
  END IF;
END $$;
