/**
 * Routing runs to ClickHouse targets by organization: `organizations` maps an organization id to
 * a named target; everything else goes to the default target. A flush writes one group per
 * target (sequentially unless --flush-groups parallel) and is acknowledged only when all landed.
 */
import { ConfigError } from '../errors.ts';
import { groupBy } from '../objects.ts';
import type { ClickHouseRow } from '../transform/row.ts';
import { type EncodedRow, encodeRow, type RunsStore } from './runs-sink.ts';

/** An encoded row with the organization that routes it. */
export type RoutedEncodedRow = EncodedRow & { readonly organizationId: string };

/** A row encoded for the insert, with the organization that routes it. */
export function encodeRoutedRow(row: ClickHouseRow): RoutedEncodedRow {
  return { ...encodeRow(row), organizationId: String(row.organization_id) };
}

export const DEFAULT_TARGET = 'default';

export interface Routing<Store extends RunsStore = RunsStore> {
  /** Extra targets by name (the default target is the daemon's own table). */
  targets: ReadonlyMap<string, Store>;
  /** Organization id -> target name. */
  organizations: Readonly<Record<string, string>>;
}

export class RunsTargets {
  private readonly tables: Map<string, RunsStore>;

  constructor(
    defaultTable: RunsStore,
    private readonly routing: Routing = { targets: new Map(), organizations: {} },
  ) {
    this.tables = new Map([[DEFAULT_TARGET, defaultTable], ...routing.targets]);
    for (const [org, target] of Object.entries(routing.organizations)) {
      if (!this.tables.has(target)) {
        throw new ConfigError(`organization ${org} is routed to unknown target ${target}: add ${target} to the targets of --routes`);
      }
    }
  }

  targetOf(row: ClickHouseRow): string {
    return this.targetOfOrganization(String(row.organization_id));
  }

  targetOfOrganization(organizationId: string): string {
    return this.routing.organizations[organizationId] ?? DEFAULT_TARGET;
  }

  table(target: string): RunsStore {
    const table = this.tables.get(target);
    if (!table) throw new Error(`no ClickHouse target ${target}`);
    return table;
  }

  /** Write rows to their targets, one insert per target, one target after another. */
  async write(rows: readonly ClickHouseRow[], signal?: AbortSignal): Promise<void> {
    for (const [target, group] of groupBy(rows, (row) => this.targetOf(row))) await this.table(target).write(group, signal);
  }

  /** `write` for rows already encoded, routed by the organization each carries. */
  async writeEncoded(rows: readonly RoutedEncodedRow[], signal?: AbortSignal): Promise<void> {
    const groups = groupBy(rows, (row) => this.targetOfOrganization(row.organizationId));
    for (const [target, group] of groups) await this.table(target).writeEncoded(group, signal);
  }

  /** Every target, default first, with its name. */
  get all(): Array<[string, RunsStore]> {
    return [...this.tables];
  }
}
