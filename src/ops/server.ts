/**
 * The operations endpoint of a long-running command (replicate, backfill): `/metrics`
 * (Prometheus text), `/healthz` (the process answers) and `/readyz` (200 when the command's
 * readiness check finds no problem, 503 with the reasons otherwise; see daemon-ops.ts). GET and
 * HEAD only, behind the shared request guard (src/http/server.ts); with a token, /healthz stays
 * open for probes.
 */
import type { Registry } from 'prom-client';
import { type Listening, serve } from '../http/server.ts';
import type { Logger } from '../logger.ts';

export interface Readiness {
  /** Empty when ready; otherwise the reasons it is not. */
  problems(): Promise<string[]>;
}

export type OpsServer = Listening;

export async function startOpsServer(
  registry: Registry,
  readiness: Readiness,
  port: number,
  host: string,
  log: Logger,
  token?: string,
): Promise<OpsServer> {
  const listening = await serve(
    { name: 'metrics', methods: ['GET', 'HEAD'], token, openPaths: ['/healthz'], log, port, host, what: '--metrics-port' },
    async ({ path }) => {
      if (path === '/metrics') return { status: 200, type: registry.contentType, body: await registry.metrics() };
      if (path === '/healthz') return { status: 200, body: { ok: true } };
      if (path === '/readyz') {
        const problems = await readiness.problems();
        return { status: problems.length === 0 ? 200 : 503, body: { ready: problems.length === 0, problems } };
      }
      return { status: 404, body: { error: 'no such path: use /metrics, /healthz or /readyz' } };
    },
  );
  log.info({ url: listening.url }, 'metrics and health endpoints listening');
  return listening;
}
