/**
 * Errors on the wire: the client's mistake is a 400 with its sentence, logged below warn; an
 * engine failure is a 503 with a generic sentence and a request id, its detail only in the log
 * under that id. Against the real engine (chDB): the database the API reads does not exist.
 */
import { expect, it } from 'vitest';
import { startApi } from '../../src/queries/http-api.ts';
import { oneTarget } from '../../src/queries/params.ts';
import { RunQueries } from '../../src/queries/run-queries.ts';
import { testClickHouse } from '../support/databases.ts';
import { capturingLogger } from '../support/logs.ts';

const SCOPE = 'org=o1&project=p1&env=e1';

it('a failing engine is a 503 with a request id, the detail only in the log; a bad request is a 400 logged at debug', async () => {
  const ch = await testClickHouse();
  const { log, lines } = capturingLogger('debug');
  const queries = new RunQueries(ch, 'no_such_database', { timeoutSeconds: 10, maxMemoryBytes: 2 ** 30 });
  const api = await startApi(oneTarget(queries), 0, '127.0.0.1', log);
  try {
    const failed = await fetch(`${api.url}/runs/count?${SCOPE}`);
    expect(failed.status).toBe(503);
    const body = (await failed.json()) as { error: string; requestId: string };
    expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(failed.headers.get('x-request-id')).toBe(body.requestId);
    expect(body.error).toBe(`the request could not be answered (request id ${body.requestId}): see the server's log`);
    const logged = lines.map((l) => JSON.parse(l) as { level: number; requestId?: string; err?: string });
    const entry = logged.find((l) => l.requestId === body.requestId && l.level === 50);
    expect(entry?.err).toContain('no_such_database'); // the engine's detail, in the log only

    const bad = await fetch(`${api.url}/runs/count?${SCOPE}&period=99999d`);
    expect(bad.status).toBe(400);
    const badId = bad.headers.get('x-request-id');
    expect(((await bad.json()) as { error: string }).error).toBe('period: period "99999d" is longer than ten years (3650d)');
    const badLines = lines.map((l) => JSON.parse(l) as { level: number; requestId?: string }).filter((l) => l.requestId === badId);
    expect(badLines.length).toBeGreaterThan(0);
    expect(badLines.every((l) => l.level < 40)).toBe(true); // below warn
  } finally {
    await api.close();
  }
});
