/**
 * The run-list queries as a small read-only HTTP JSON API, for dashboards:
 * `GET /runs`, `/runs/count`, `/runs/stats`, `/runs/tags` with the CLI's names as query
 * parameters (`?org=o1&project=p1&env=e1&status=CRASHED&tag=user:42`), and `/healthz`.
 * Bad input is a 400 with one sentence; everything else GET-only.
 */
import http from 'node:http';
import type { Logger } from '../logger.ts';
import { listen } from '../ops/server.ts';
import { QueryInputError } from './filters.ts';
import { QUERY_PATHS, type QueryKind, type QueryRouter, queryInput, runQuery } from './params.ts';

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

const KIND_BY_PATH = new Map<string, QueryKind>(Object.entries(QUERY_PATHS).map(([kind, path]) => [path, kind as QueryKind]));

function paramsOf(url: URL): Record<string, unknown> {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of url.searchParams) grouped.set(name, [...(grouped.get(name) ?? []), value]);
  return queryInput(grouped);
}

export async function startApi(queries: QueryRouter, port: number, host: string, log: Logger): Promise<RunningApi> {
  const server = http.createServer(async (request, response) => {
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    const url = new URL(request.url ?? '/', 'http://api');
    if (request.method !== 'GET') return send(405, { error: 'the API is read-only: use GET' });
    if (url.pathname === '/healthz') return send(200, { ok: true });
    const kind = KIND_BY_PATH.get(url.pathname);
    if (!kind) return send(404, { error: `no route ${url.pathname}: use ${Object.values(QUERY_PATHS).join(', ')}` });
    try {
      return send(200, await runQuery(queries, kind, paramsOf(url)));
    } catch (error) {
      if (error instanceof QueryInputError) return send(400, { error: error.message });
      log.warn({ path: url.pathname, err: (error as Error).message }, 'API query failed');
      return send(503, { error: (error as Error).message });
    }
  });
  const api = await listen(server, port, host);
  log.info({ url: api.url }, 'run-list API listening');
  return api;
}
