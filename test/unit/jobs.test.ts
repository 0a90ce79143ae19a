/** The job endpoint's edges: which arguments go to a daemon, and what it refuses before running anything. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JOBS_PATH, jobRoutes, remoteJob } from '../../src/cli/jobs.ts';
import { loadConfig } from '../../src/config.ts';
import { type Listening, serve } from '../../src/http/server.ts';
import { silentLogger } from '../../src/logger.ts';

it('sends backfill, verify, dead-letters and status with --api-url to the daemon, without that flag', () => {
  expect(remoteJob(['backfill', '--list', '--api-url', 'http://h:1'])).toEqual({ apiUrl: 'http://h:1', argv: ['backfill', '--list'] });
  expect(remoteJob(['dead-letters', 'list', '--api-url=http://h:1'])).toEqual({ apiUrl: 'http://h:1', argv: ['dead-letters', 'list'] });
  expect(remoteJob(['verify', '--json'])).toBeUndefined();
  expect(remoteJob(['runs', 'list', '--api-url', 'http://h:1'])).toBeUndefined(); // the run-list API has its own client
  expect(() => remoteJob(['status', '--api-url'])).toThrow('--api-url needs the URL');
});

let server: Listening;
beforeAll(async () => {
  const routes = jobRoutes(loadConfig({ databaseUrl: 'postgres://u:secret@db/x' }, {}), silentLogger);
  // Behind the request guard, as on a daemon's ops port (ops/server.ts).
  server = await serve(
    {
      name: 'jobs',
      methods: ['GET', 'HEAD', 'POST'],
      log: silentLogger,
      port: 0,
      host: '127.0.0.1',
      what: '--metrics-port',
      raw: (request, response) => routes(request, response),
    },
    async () => ({ status: 404, body: { error: 'no such path' } }),
  );
});
afterAll(() => server.close());

const post = (body: string) => fetch(`${server.url}${JOBS_PATH}`, { method: 'POST', body });

it('refuses other methods, bodies that are not its JSON, oversized bodies and commands it does not run', async () => {
  expect((await fetch(`${server.url}${JOBS_PATH}`)).status).toBe(405);
  for (const body of ['', 'nope', '{}', '{"argv": []}', '{"argv": [1]}', '{"argv": ["status"], "env": {"A": 1}}']) {
    const response = await post(body);
    expect(response.status, body).toBe(400);
    expect(await response.text()).not.toContain('secret');
  }
  expect((await post(JSON.stringify({ argv: ['status', 'x'.repeat(70_000)] }))).status).toBe(400);
  for (const name of ['replicate', 'migrate', 'demo', 'runs', 'serve']) {
    const response = await post(JSON.stringify({ argv: [name] }));
    expect(response.status, name).toBe(400);
    expect(((await response.json()) as { error: string }).error).toContain('backfill, verify, dead-letters, status');
  }
});

it("streams a command's output and exit code; commander's own exits and errors stay in the job", async () => {
  const lines = async (response: Response) =>
    (await response.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const help = await lines(await post(JSON.stringify({ argv: ['status', '--help'] })));
  expect(help.map((l) => l.stdout ?? '').join('')).toContain('Usage: runs-cdc status');
  expect(help.at(-1)).toEqual({ exitCode: 0 });
  const unknown = await lines(await post(JSON.stringify({ argv: ['verify', '--no-such-flag'] })));
  expect(unknown.map((l) => l.stderr ?? '').join('')).toContain("unknown option '--no-such-flag'");
  expect(unknown.at(-1)).toEqual({ exitCode: 2 }); // a usage error: could not run
});
