/**
 * Named failpoints: the few places where a test steps into production code to make a fault or a
 * race happen at an exact point (as Supabase etl's failpoints do), all named in this one module
 * with what they pass. Production code calls `failpoint(name, ...)`, which does nothing unless a
 * test armed that name. The one fault that is not a point in the code, a crash, is `crash()`
 * here too: components implement it under the CRASH symbol, outside their public API.
 */
import type { SourceTable } from './schema/columns.ts';
import type { Tuple } from './transform/row.ts';

export interface Failpoints {
  /** A backfill page was read and transformed but not yet written: tests race CDC (or a fault) here. */
  'backfill.page-read': (table: SourceTable, page: readonly Tuple[]) => Promise<void>;
  /** A backfill page came back from Postgres (the read runs one page ahead of the writes). */
  'backfill.page-fetched': (table: SourceTable, rows: number) => Promise<void>;
}

export type FailpointName = keyof Failpoints;

const armed = new Map<FailpointName, Failpoints[FailpointName]>();

/** Run the action armed for `name`, if any. */
export async function failpoint<Name extends FailpointName>(name: Name, ...args: Parameters<Failpoints[Name]>): Promise<void> {
  const action = armed.get(name) as ((...a: Parameters<Failpoints[Name]>) => Promise<void>) | undefined;
  if (action) await action(...args);
}

/** Arm `name` with `action` (tests only); returns the function that disarms it. */
export function armFailpoint<Name extends FailpointName>(name: Name, action: Failpoints[Name]): () => void {
  if (armed.has(name)) throw new Error(`failpoint ${name} is already armed`);
  armed.set(name, action);
  return () => {
    if (armed.get(name) === action) armed.delete(name);
  };
}

/** The key under which a component simulates its process dying (see `crash`). */
export const CRASH: unique symbol = Symbol('runs-cdc crash');

export interface Crashable {
  [CRASH](): void | Promise<void>;
}

/**
 * What a SIGKILL leaves behind, for tests that run the daemon in their own process: connections
 * drop with no flush and no status update, buffered rows are lost (a write already in flight may
 * still land), nothing more is confirmed.
 */
export async function crash(target: Crashable): Promise<void> {
  await target[CRASH]();
}
