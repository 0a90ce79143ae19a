/**
 * A tiny HTTP endpoint on 127.0.0.1 standing in for what a ClickHouse server or the proxy in front
 * of it does at the protocol level (an exception in a 200 body, a 401 from a proxy, a reset
 * connection, an error in the middle of a result), for tests of the client side only. Data tests
 * use chDB, never this.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRequest {
  /** The SQL: the `query` URL parameter, else the body (or the multipart part named query). */
  query: string;
  url: string;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** What to answer: a status, body and headers, or `reset` to destroy the socket unanswered. */
export type FakeAnswer = { status?: number; body?: string; headers?: Record<string, string> } | 'reset';

export interface FakeClickHouse {
  url: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

export async function startFakeClickHouse(answer: (request: FakeRequest) => FakeAnswer): Promise<FakeClickHouse> {
  const requests: FakeRequest[] = [];
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const url = new URL(req.url ?? '/', 'http://x');
    const multipartQuery = /name="query"\r\n\r\n([\s\S]*?)\r\n--/.exec(body)?.[1];
    const request = { query: url.searchParams.get('query') ?? multipartQuery ?? body, url: req.url ?? '', body, headers: req.headers };
    requests.push(request);
    const reply = answer(request);
    if (reply === 'reset') {
      req.socket.destroy();
      return;
    }
    res.writeHead(reply.status ?? 200, { 'Content-Type': 'text/plain', ...reply.headers });
    res.end(reply.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://default:@127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A JSONEachRow body. */
export const jsonRows = (...rows: object[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
