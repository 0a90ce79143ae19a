/**
 * The operations endpoint of a long-running command (replicate, backfill): `/metrics`
 * (Prometheus text), `/healthz` (the process answers) and `/readyz` (200 when the command's
 * readiness check finds no problem, 503 with the reasons otherwise; see daemon-ops.ts). GET and
 * HEAD only (a daemon's extra routes may take more, e.g. POST /jobs), behind the shared request
 * guard (src/http/server.ts); with a token, /healthz stays open for probes.
 */
import type http from 'node:http';
import type { Registry } from 'prom-client';
import { type GuardedRequest, type Listening, serve } from '../http/server.ts';
import type { Logger } from '../logger.ts';

export interface Readiness {
  /** Empty when ready; otherwise the reasons it is not. */
  problems(): Promise<string[]>;
  /** Ways it runs degraded (still ready: it replicates, at a cost); listed by /readyz. */
  degraded?(): Promise<string[]>;
}

export type OpsServer = Listening;

/** Routes a daemon adds to its ops port (the live page, the jobs it runs for clients). */
export interface RawRoutes {
  /** Paths anyone may fetch even when a token is set (static files; a trailing `/` opens a folder). */
  openPaths: readonly string[];
  /** Methods beyond GET and HEAD that some route takes (POST /jobs). */
  methods: readonly string[];
  /** Without a metrics token, the token the paths it covers need (http/server.ts GuardOptions). */
  dataToken?: { token: string; flag: string; covers: (path: string) => boolean };
  /** Answers and returns true when the path is theirs; called once the guard's checks passed. */
  handle(request: http.IncomingMessage, response: http.ServerResponse, target: GuardedRequest): Promise<boolean>;
}

export async function startOpsServer(
  registry: Registry,
  readiness: Readiness,
  port: number,
  host: string,
  log: Logger,
  token?: string,
  /** More routes (the live page, the jobs a daemon runs for clients): answer and return true when
   * the path is theirs. They sit behind the same guard. */
  routes?: RawRoutes,
): Promise<OpsServer> {
  const listening = await serve(
    {
      name: 'metrics',
      methods: ['GET', 'HEAD', ...(routes?.methods ?? [])],
      token,
      openPaths: ['/healthz', ...(routes?.openPaths ?? [])],
      raw: routes?.handle,
      dataToken: routes?.dataToken,
      log,
      port,
      host,
      what: '--metrics-port',
    },
    async ({ path, method }) => {
      if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: { error: `${path} is read-only: use GET` } };
      if (path === '/metrics') return { status: 200, type: registry.contentType, body: await registry.metrics() };
      if (path === '/healthz') return { status: 200, body: { ok: true } };
      if (path === '/readyz') {
        const problems = await readiness.problems();
        const degraded = (await readiness.degraded?.()) ?? [];
        const body = { ready: problems.length === 0, problems, ...(degraded.length > 0 ? { degraded } : {}) };
        return { status: problems.length === 0 ? 200 : 503, body };
      }
      return { status: 404, body: { error: 'no such path: use /metrics, /healthz or /readyz' } };
    },
  );
  log.info({ url: listening.url }, 'metrics and health endpoints listening');
  return listening;
}
