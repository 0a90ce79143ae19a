/**
 * Seeded generation of hostile HTTP requests, and a raw-socket client that sends bytes as they are
 * (no URL parsing, no header validation), for the request-guard fuzz test. The same seed gives the
 * same requests.
 */
import net from 'node:net';

/** mulberry32: a small seeded PRNG, enough for choosing test input. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export class Gen {
  constructor(readonly random: () => number) {}
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
}

const NAMES = [
  'org',
  'project',
  'env',
  'status',
  'task',
  'version',
  'tag',
  'tag-all',
  'schedule',
  'period',
  'from',
  'to',
  'test',
  'root-only',
  'batch',
  'bulk-action',
  'run-id',
  'queue',
  'region',
  'machine',
  'source-table',
  'limit',
  'cursor',
  'prefix',
];
const ODD_NAMES = ['envv', 'Org', 'org[]', '', '__proto__', 'constructor', 'password', 'a'.repeat(300), 'limit%00', '%', 'ﾟ'];
const VALUES = [
  'org_1',
  'proj_1',
  'env_prod',
  'PENDING',
  'CRASHED,PENDING',
  'DONE',
  '7d',
  '24h',
  '30m',
  '0m',
  '99999999999d',
  '3651d',
  '2026-02-30',
  '2026-10-01',
  '2026-10-01T12:00:00Z',
  '1899-12-31',
  '2300-01-01',
  '9999-99-99',
  'only',
  'exclude',
  'true',
  'false',
  'maybe',
  '0',
  '1',
  '100',
  '101',
  '-5',
  '1e3',
  'NaN',
  'Infinity',
  '',
  'TaskRun',
  'task_run_v2',
  'eyJkIjoibmV4dCJ9',
  "'; DROP TABLE x; --",
  '{a:String}',
  '\\N',
  'a'.repeat(2000),
  '%',
  '%zz',
  '%C3%28',
  '%FF%FE',
  '%E2%82',
  '%00',
  '%ED%A0%80',
  '💥',
  'user:42',
];
const PATHS = [
  '/runs',
  '/runs/count',
  '/runs/stats',
  '/runs/tags',
  '/healthz',
  '/metrics',
  '/readyz',
  '/',
  '/runs/',
  '/RUNS',
  '//runs',
  '/runs/../metrics',
  '/%2e%2e/',
  '/%',
  '/%C0%AF',
  '/runs%00',
  '/nope',
];
const TARGETS = ['*', 'http://[zz]/', 'http://h/runs?org=o1', 'https://a:b@h:99999/', 'runs', '?org=o', '', ' ', 'http://', '//x'];
const METHODS = [
  'GET',
  'GET',
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'CONNECT',
  'PRI',
  'get',
  'G\u0000T',
  'FOO',
];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9.9', 'HTTP/1.1 extra', ''];

/** A query string from known and odd names and values, raw (values may be bad percent-encoding). */
function query(g: Gen, scoped: boolean): string {
  const pairs: string[] = scoped ? ['org=org_1', 'project=proj_1', 'env=env_prod'] : [];
  for (let i = g.int(5); i > 0; i--) {
    const name = g.chance(0.85) ? g.pick(NAMES) : g.pick(ODD_NAMES);
    pairs.push(g.chance(0.1) ? name : `${name}=${g.pick(VALUES)}`);
  }
  // Shuffle so scope is not always first; sometimes repeat one.
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = g.int(i + 1);
    [pairs[i], pairs[j]] = [pairs[j] as string, pairs[i] as string];
  }
  if (pairs.length > 0 && g.chance(0.1)) pairs.push(g.pick(pairs));
  return pairs.join(g.chance(0.95) ? '&' : ';');
}

/** A request as raw bytes: well-formed, odd, or a mutation of a well-formed one. */
export function request(g: Gen, token?: string): Buffer {
  const target = g.chance(0.9) ? `${g.pick(PATHS)}${g.chance(0.7) ? `?${query(g, g.chance(0.7))}` : ''}` : g.pick(TARGETS);
  const method = g.chance(0.85) ? 'GET' : g.pick(METHODS);
  const version = g.chance(0.9) ? 'HTTP/1.1' : g.pick(VERSIONS);
  const headers = [`Host: ${g.chance(0.9) ? '127.0.0.1' : g.pick(['', '[zz]', 'a b', 'x'.repeat(500)])}`, 'Connection: close'];
  if (token !== undefined && g.chance(0.8)) headers.push(`Authorization: Bearer ${g.chance(0.9) ? token : g.pick(['', 'x', `${token}x`])}`);
  if (g.chance(0.05)) headers.push('Content-Length: 5', '', 'abc');
  if (g.chance(0.03)) headers.push('Transfer-Encoding: chunked', '', 'zz');
  if (g.chance(0.03)) headers.push(`X-Big: ${'a'.repeat(20_000)}`);
  const text = Buffer.from(`${method} ${target} ${version}\r\n${headers.join('\r\n')}\r\n\r\n`, 'utf8');
  if (g.chance(0.8)) return text;
  // Mutations: flip, insert or delete bytes, truncate, or raw garbage.
  const bytes = [...text];
  for (let i = 1 + g.int(4); i > 0; i--) {
    const at = g.int(bytes.length);
    const kind = g.int(4);
    if (kind === 0) bytes[at] = g.int(256);
    else if (kind === 1) bytes.splice(at, 0, ...g.bytes(1 + g.int(8)));
    else if (kind === 2) bytes.splice(at, 1 + g.int(4));
    else bytes.length = Math.max(1, at);
  }
  return g.chance(0.1) ? g.bytes(1 + g.int(200)) : Buffer.from(bytes);
}

export interface RawResponse {
  /** 0 when the server closed without an HTTP answer (or did not answer within the timeout). */
  status: number;
  body: string;
  raw: string;
}

/**
 * Send `bytes` on a fresh connection and read whatever comes back until close. The client
 * half-closes only once an answer started (or after `quietMs` without one): a FIN sent with the
 * request would make Node drop a request still being answered, and a request cut short needs the
 * FIN to be seen as cut short.
 */
export function sendRaw(port: number, bytes: Buffer, timeoutMs = 5_000, quietMs = 500): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let ending: NodeJS.Timeout | undefined;
    const endSoon = (ms: number) => {
      clearTimeout(ending);
      ending = setTimeout(() => socket.end(), ms);
    };
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      endSoon(quietMs);
    });
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('data', (d) => {
      if (chunks.length === 0) endSoon(50);
      chunks.push(d);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(ending);
      const raw = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);
      resolve({ status, body: raw.slice(raw.indexOf('\r\n\r\n') + 4), raw });
    });
  });
}

/** Text that must never reach a client: stack frames, engine errors, JS error names. */
export const LEAK = /\n\s+at |DB::Exception|Code: \d+\.|TypeError|ReferenceError|RangeError|SyntaxError|ECONNREFUSED|node:internal/;
