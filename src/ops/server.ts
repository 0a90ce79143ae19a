/**
 * The operations endpoint of a long-running command (replicate, backfill): `/metrics`
 * (Prometheus text), `/healthz` (the process answers) and `/readyz` (200 when the command's
 * readiness check finds no problem, 503 with the reasons otherwise; see daemon-ops.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';

export interface Readiness {
  /** Empty when ready; otherwise the reasons it is not. */
  problems(): Promise<string[]>;
  /** Ways it runs degraded (still ready: it replicates, at a cost); listed by /readyz. */
  degraded?(): Promise<string[]>;
}

export interface OpsServer {
  url: string;
  close(): Promise<void>;
}

export async function startOpsServer(
  registry: Registry,
  readiness: Readiness,
  port: number,
  host: string,
  log: Logger,
): Promise<OpsServer> {
  const server = http.createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://ops').pathname;
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    try {
      if (path === '/metrics') return send(200, registry.contentType, await registry.metrics());
      if (path === '/healthz') return send(200, 'application/json', '{"ok":true}');
      if (path === '/readyz') {
        const problems = await readiness.problems();
        const degraded = (await readiness.degraded?.()) ?? [];
        const body = { ready: problems.length === 0, problems, ...(degraded.length > 0 ? { degraded } : {}) };
        return send(problems.length === 0 ? 200 : 503, 'application/json', JSON.stringify(body));
      }
      return send(404, 'application/json', JSON.stringify({ error: 'use /metrics, /healthz or /readyz' }));
    } catch (error) {
      return send(500, 'application/json', JSON.stringify({ error: (error as Error).message }));
    }
  });
  const listening = await listen(server, port, host);
  log.info({ url: listening.url }, 'metrics and health endpoints listening');
  return listening;
}

/** Start `server` on `host:port` (0: any free port); its URL, and a close that waits for it. */
export async function listen(server: http.Server, port: number, host: string): Promise<OpsServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
