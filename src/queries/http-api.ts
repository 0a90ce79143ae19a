/**
 * The run-list queries as a small read-only HTTP JSON API, for dashboards and backends:
 * `GET /runs`, `/runs/count`, `/runs/stats`, `/runs/tags` with the CLI's names as query
 * parameters (`?org=o1&project=p1&env=e1&status=CRASHED&tag=user:42`), and `/healthz`.
 *
 * What it trusts: the caller. It is a backend-for-backend API: the caller names the organization,
 * project and environment, and gets their runs; it has no users. Run it on loopback (the default)
 * or behind a backend that authorizes its users, and set a bearer token (`--api-token`) when
 * anything else can reach the port. Requests pass the shared guard (src/http/server.ts): input
 * mistakes are 400 with one sentence, engine failures 503 with a request id.
 */
import { serve } from '../http/server.ts';
import type { Logger } from '../logger.ts';
import { parseQuery, QUERY_PATHS, type QueryRouter, queryKindOf, runQuery } from './params.ts';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

export async function startApi(queries: QueryRouter, port: number, host: string, log: Logger, token?: string): Promise<RunningApi> {
  const api = await serve(
    { name: 'run-list API', methods: ['GET', 'HEAD'], token, openPaths: ['/healthz'], log, port, host, what: '--api-port' },
    async ({ path, params }) => {
      if (path === '/healthz') return { status: 200, body: { ok: true } };
      const kind = queryKindOf(path);
      if (!kind) return { status: 404, body: { error: `no such path: use ${Object.values(QUERY_PATHS).join(', ')}` } };
      return { status: 200, body: await runQuery(queries, kind, parseQuery(kind, params, 'param')), data: true };
    },
  );
  log.info({ url: api.url }, 'run-list API listening');
  return api;
}
