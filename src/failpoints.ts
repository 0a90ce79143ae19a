/**
 * Named failpoints: the few places where a test steps into production code to make a fault or a
 * race happen at an exact point (as Supabase etl's failpoints do), all named in this one module
 * with what they pass. Production code calls `failpoint(name, ...)`, which does nothing unless a
 * test armed that name; no production class carries a hook of its own for tests.
 */
import type { SourceTable } from './transform/columns.ts';
import type { Tuple } from './transform/row.ts';

export interface Failpoints {
  /** A backfill page was read and transformed but not yet written: tests race CDC (or a fault) here. */
  'backfill.page-read': (table: SourceTable, page: readonly Tuple[]) => Promise<void>;
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
