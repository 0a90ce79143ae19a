import type { TestProject } from 'vitest/node';
import { startPostgres } from '../../src/embedded/postgres.ts';

/** One Postgres server for the whole run (DATABASE_URL, if set, is used instead). */
export default async function setup(project: TestProject) {
  if (process.env.DATABASE_URL) {
    project.provide('databaseUrl', process.env.DATABASE_URL);
    return;
  }
  const server = await startPostgres();
  project.provide('databaseUrl', server.url);
  return () => server.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}
