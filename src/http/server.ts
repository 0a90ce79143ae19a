/**
 * The one request guard every runs-cdc HTTP server uses (the run-list API, the daemon's and the
 * backfill's metrics port, and whatever page is added later). Its promise: no request, however
 * malformed, ends the process or gets a 5xx for what the client sent.
 *
 * - A request line or header Node's parser refuses gets a 4xx with a JSON sentence, and the
 *   socket is closed (`clientError`).
 * - The request target must parse as a URL; the path and every query parameter must be valid
 *   percent-encoding of UTF-8. Otherwise 400.
 * - A method the server does not serve gets 405 with `Allow`.
 * - With a token, every path but the open ones needs `Authorization: Bearer <token>` (compared in
 *   constant time): 401 otherwise.
 * - The handler sees decoded `[name, value]` pairs in order (repetitions kept). A `UsageError`
 *   it throws is the client's mistake: 400 with its sentence. Anything else is ours: 503 with a
 *   generic sentence and a request id; the detail goes to the log under that id.
 * - Every body but query results passes through `redactSecrets`; every answer carries `x-request-id`.
 * - Client mistakes are logged at debug, our failures at error.
 */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CONFIG_SOURCES } from '../config.ts';
import { RunsCdcError, UsageError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactSecrets } from '../redact.ts';

export interface GuardedRequest {
  method: string;
  /** The path, percent-decoded. */
  path: string;
  /** Query parameters, decoded, in order, repetitions kept. */
  params: Array<[string, string]>;
  /** Also sent as `x-request-id` and logged with every line about this request. */
  id: string;
}

export interface Reply {
  status: number;
  /** A string is sent as it is (with `type`); anything else as JSON. */
  body: unknown;
  type?: string;
  /** The user's data (query results): sent unredacted, a tag `token=abc` being a value. */
  data?: boolean;
}

export interface GuardOptions {
  /** What this server is, for log lines: "run-list API", "metrics". */
  name: string;
  /** Methods served; anything else is 405. HEAD is answered like GET without a body. */
  methods: readonly string[];
  /** When set, requests need `Authorization: Bearer <token>`, except on `openPaths` (a path
   * ending in `/` opens everything under it). */
  token?: string;
  openPaths?: readonly string[];
  log: Logger;
  /** The setting that chose the port (`--api-port`, `--metrics-port`): names the token to send. */
  what?: string;
  /** Without `token`, a token the paths it covers still need (a daemon's run data under --api-token). */
  dataToken?: { token: string; flag: string; covers: (path: string) => boolean };
  /**
   * Routes that write their own answer (a page's static files, a job streaming its output): asked
   * first, once the request passed every check above; true when it answered. What it throws is
   * answered like the handler's.
   */
  raw?: (request: http.IncomingMessage, response: http.ServerResponse, target: GuardedRequest) => Promise<boolean>;
}

export type Handler = (request: GuardedRequest) => Promise<Reply>;

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** Constant-time comparison of a presented token with the expected one (hashes have one length). */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

/** Whether the request's `Authorization: Bearer` is `token`. */
function bearerMatches(request: http.IncomingMessage, token: string): boolean {
  const presented = /^Bearer (.+)$/i.exec(request.headers.authorization ?? '')?.[1];
  return presented !== undefined && tokenMatches(presented.trim(), token);
}

function decode(text: string): string {
  // decodeURIComponent throws on a stray `%` and on percent-escapes that are not UTF-8.
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/** The request target split into a decoded path and parameters; a UsageError when malformed. */
export function parseTarget(raw: string): { path: string; params: Array<[string, string]> } {
  let url: URL;
  try {
    url = new URL(raw, 'http://localhost');
  } catch {
    throw new UsageError('the request target is not a valid URL: send a path like /runs?org=…');
  }
  if (!raw.startsWith('/') && !/^https?:\/\//i.test(raw)) {
    throw new UsageError('the request target must be a path like /runs?org=…');
  }
  try {
    const path = decodeURIComponent(url.pathname);
    const params: Array<[string, string]> = [];
    for (const piece of url.search.slice(1).split('&')) {
      if (piece === '') continue;
      const eq = piece.indexOf('=');
      params.push(eq < 0 ? [decode(piece), ''] : [decode(piece.slice(0, eq)), decode(piece.slice(eq + 1))]);
    }
    return { path, params };
  } catch {
    throw new UsageError('the request has bad percent-encoding or invalid UTF-8 in its path or query: encode it as UTF-8');
  }
}

/** The token setting of the port `what` names: the run-list API's, or the metrics port's. */
function tokenSetting(what: string | undefined): { flag: string; env: string } {
  return what === '--api-port' ? CONFIG_SOURCES.apiToken : CONFIG_SOURCES.metricsToken;
}

/** A request listener that answers every request through the guard. */
function guard(options: GuardOptions, handler: Handler): http.RequestListener {
  const { log } = options;
  const open = new Set(options.openPaths ?? []);
  // `/` opens only itself; a longer path ending in `/` opens everything under it (`/assets/`).
  const isOpen = (path: string) => open.has(path) || [...open].some((p) => p.length > 1 && p.endsWith('/') && path.startsWith(p));
  /** The token a path needs and the flag that sets it; undefined when it needs none. */
  const requiredToken = (path: string): { token: string; flag: string } | undefined => {
    if (options.token !== undefined) {
      return isOpen(path) ? undefined : { token: options.token, flag: tokenSetting(options.what).flag };
    }
    return options.dataToken?.covers(path) ? options.dataToken : undefined;
  };
  return (request, response) => {
    const id = randomUUID();
    const send = (reply: Reply, headers: Record<string, string> = {}) => {
      if (response.headersSent) return;
      const text = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      const body = Buffer.from(reply.data ? text : redactSecrets(text));
      response.writeHead(reply.status, {
        'content-type': reply.type ?? 'application/json',
        'content-length': body.length,
        'x-request-id': id,
        ...headers,
      });
      response.end(body);
    };
    const refuse = (status: number, error: string, headers?: Record<string, string>) => {
      log.debug({ requestId: id, status, error: redactSecrets(error) }, `${options.name}: refused a request`);
      send({ status, body: { error } }, headers);
    };
    const answer = async () => {
      const method = request.method ?? '';
      if (!options.methods.includes(method)) {
        return refuse(405, `method ${method.slice(0, 20)} is not served here: use ${options.methods.join(' or ')}`, {
          allow: options.methods.join(', '),
        });
      }
      if (request.headers.host === undefined && request.httpVersion === '1.1') {
        return refuse(400, 'the request has no Host header: HTTP/1.1 requires one');
      }
      let target: ReturnType<typeof parseTarget>;
      try {
        target = parseTarget(request.url ?? '/');
      } catch (error) {
        return refuse(400, (error as Error).message);
      }
      const required = requiredToken(target.path);
      if (required && !bearerMatches(request, required.token)) {
        return refuse(401, `missing or wrong bearer token: send Authorization: Bearer <the ${required.flag}>`, {
          'www-authenticate': 'Bearer',
        });
      }
      try {
        if (options.raw && (await options.raw(request, response, { method, id, ...target }))) return;
        send(await handler({ method, id, ...target }));
      } catch (error) {
        if (error instanceof UsageError) return refuse(400, error.message);
        log.error(
          { requestId: id, path: redactSecrets(target.path), err: redactSecrets(String((error as Error)?.stack ?? error)) },
          `${options.name}: request failed`,
        );
        send({ status: 503, body: { error: `the request could not be answered (request id ${id}): see the server's log`, requestId: id } });
      }
    };
    answer().catch((error: unknown) => {
      // Only writing the answer can fail here (a socket gone): nothing to tell the client.
      log.debug({ requestId: id, err: String(error) }, `${options.name}: could not answer`);
      response.destroy();
    });
  };
}

const CLIENT_ERROR_STATUS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

/** What Node's parser refused (bad request line, bad header): a JSON 4xx, then the socket closes. */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  socket.on('error', () => {});
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason] = CLIENT_ERROR_STATUS[error.code ?? ''] ?? [400, 'Bad Request'];
  const body = JSON.stringify({ error: 'malformed HTTP request: send an HTTP/1.1 GET with a path like /runs?org=…' });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

export interface Listening {
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|\[::1\])$/i;

/** The socket-level errors of starting to listen, each one sentence with the fix. */
function listenError(error: NodeJS.ErrnoException, what: string, port: number, host: string): Error {
  switch (error.code) {
    case 'EADDRINUSE':
      return new RunsCdcError(`port ${port} on ${host} is already in use: stop what listens there or pick another ${what}`);
    case 'EACCES':
      return new RunsCdcError(`port ${port} on ${host} needs privileges: pick a port above 1023 for ${what}`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAFNOSUPPORT':
    case 'EINVAL':
      return new RunsCdcError(
        `--listen-host ${JSON.stringify(host)} is not an address of this machine: use 127.0.0.1 (the default), 0.0.0.0 or one of its addresses`,
      );
    default:
      return error;
  }
}

/**
 * A guarded server listening on `host:port` (0: any free port): its URL and a close that waits
 * for it. `what` names the setting that chose the port, for the sentence when it is taken. Warns
 * when it listens beyond loopback without a token.
 */
export async function serve(options: GuardOptions & { port: number; host: string; what: string }, handler: Handler): Promise<Listening> {
  // Node would answer a missing Host itself, with an empty body: the guard answers it instead.
  const server = http.createServer({ requireHostHeader: false }, guard(options, handler));
  server.on('clientError', answerClientError);
  // CONNECT never reaches the request listener; without this Node would just drop the socket.
  server.on('connect', (request: http.IncomingMessage, socket: Duplex) => {
    const body = JSON.stringify({ error: `method CONNECT is not served here: use ${options.methods.join(' or ')}` });
    socket.on('error', () => {});
    socket.end(
      `HTTP/1.1 405 Method Not Allowed\r\nallow: ${options.methods.join(', ')}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    request.destroy();
  });
  const { port, host, log } = options;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(error, options.what, port, host)));
    server.listen(port, host, resolve);
  });
  server.on('error', (error) => log.error({ err: error.message }, `${options.name}: server error`));
  if (options.token === undefined && !LOOPBACK.test(host)) {
    log.warn(
      { host, port },
      `${options.name} listens on ${host} without a token: anyone who reaches this port can use it; set ${tokenSetting(options.what).flag} (${tokenSetting(options.what).env}) or listen on 127.0.0.1`,
    );
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
