/** The runs tables' DDL from `sql/`, for the demo and tests (production already has the tables). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

const SCHEMA_FILE = fileURLToPath(new URL('../../sql/001_runs_tables.sql', import.meta.url));

export async function createRunsTables(sql: pg.ClientBase): Promise<void> {
  await sql.query(readFileSync(SCHEMA_FILE, 'utf8'));
}
