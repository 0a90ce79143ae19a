/** The run-list queries on ClickHouse, for the commands that serve them (runs, serve, replicate). */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { oneTarget, type QueryRouter } from '../queries/params.ts';
import { RunQueries } from '../queries/run-queries.ts';
import { openClickHouse, openRouteTargets } from './runtime.ts';

function queriesOn(client: ClickHouseClient, config: Config, database: string): RunQueries {
  return new RunQueries(client, database, { timeoutSeconds: config.queryTimeoutSeconds, maxMemoryBytes: config.queryMaxMemoryBytes });
}

/**
 * The queries of every ClickHouse target, on connections of their own (on the embedded engine a
 * query's readonly settings would otherwise stay on a writer's session). With --routes a query
 * goes to the target of its organization; a target without a URL is another database on the
 * default connection.
 */
export async function openQueries(config: Config, log: Logger): Promise<{ router: QueryRouter; close(): Promise<void> }> {
  const client = await openClickHouse(config);
  const fallback = queriesOn(client, config, config.clickhouseDatabase);
  if (!config.routes) return { router: oneTarget(fallback), close: () => client.close() };
  const routed = await openRouteTargets(config, client).catch(async (error: unknown) => {
    await client.close();
    throw error;
  });
  const byTarget = new Map(routed.targets.map((t) => [t.name, queriesOn(t.client, config, t.config.clickhouseDatabase)]));
  const organizations = config.routes.organizations;
  log.debug({ targets: [...byTarget.keys()] }, 'queries go to the target of their organization');
  return {
    router: (organizationId) => byTarget.get(organizations[organizationId ?? ''] ?? '') ?? fallback,
    close: async () => {
      await routed.close();
      await client.close();
    },
  };
}
