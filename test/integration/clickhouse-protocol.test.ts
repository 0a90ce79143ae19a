/**
 * What runs-cdc does with a server's (or its proxy's) answers that chDB never gives: an exception
 * in a 200 body, old servers, auth refused by a proxy, reset keep-alive connections, errors in the
 * middle of a result, long parameter lists. Against a fake HTTP endpoint (test/support), since
 * only the client side is under test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.ts';
import { QueryError, RunQueries } from '../../src/queries/run-queries.ts';
import { connectClickHouse } from '../../src/sink/clickhouse.ts';
import { MigrationError, migrate } from '../../src/sink/migrations.ts';
import { RunsTable } from '../../src/sink/runs-table.ts';
import { type FakeAnswer, type FakeClickHouse, type FakeRequest, jsonRows, startFakeClickHouse } from '../support/fake-clickhouse.ts';

let fake: FakeClickHouse | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function clientFor(answer: (request: FakeRequest) => FakeAnswer) {
  fake = await startFakeClickHouse(answer);
  return connectClickHouse({ url: fake.url, chdbPath: ':memory:', requestTimeoutMs: 20_000 });
}

/** A server of `version` with no tables yet, answering DDL with `ddl`. */
const server =
  (version: string, ddl: (query: string) => FakeAnswer = () => ({})) =>
  ({ query }: FakeRequest): FakeAnswer => {
    if (query.includes('version()')) return { body: jsonRows({ version }) };
    if (query.includes('system.tables')) return { body: jsonRows({ n: '0' }) };
    if (/^\s*(CREATE|ALTER)/.test(query)) return ddl(query);
    return {};
  };

const ON_CLUSTER_FAILURE =
  'host-1\t9000\t0\t\t1\t0\nCode: 159. DB::Exception: Watching task /clickhouse/task_queue/ddl/query-0000000007 is executing longer than distributed_ddl_task_timeout (=170) seconds. (TIMEOUT_EXCEEDED) (version 24.8.4.13)\n';

describe('migrate', () => {
  it('stops at an exception in a 200 body and never records that migration', async () => {
    const client = await clientFor(server('24.8.4.13', (q) => (q.includes('backfill_jobs') ? { body: ON_CLUSTER_FAILURE } : {})));
    await expect(migrate(client, 'runs_cdc')).rejects.toThrow(
      /^ClickHouse did not complete migration 002_backfill_jobs \(Code: 159\. DB::Exception: Watching task .* \(TIMEOUT_EXCEEDED\).*it is not recorded as applied/,
    );
    const ledgerInserts = (fake as FakeClickHouse).requests.filter((r) => r.query.startsWith('INSERT INTO runs_cdc.runs_cdc_migrations'));
    expect(ledgerInserts.map((r) => JSON.parse(r.body).name)).toEqual(['001_task_runs_v2']);
  });

  it('asks the server to answer each DDL only once it ended, within the request timeout', async () => {
    const client = await clientFor(server('25.8.1.1'));
    await migrate(client, 'runs_cdc');
    const ddl = (fake as FakeClickHouse).requests.filter((r) => r.query.startsWith('CREATE'));
    expect(ddl.length).toBeGreaterThan(4);
    for (const request of ddl) {
      const params = new URL(request.url, 'http://x').searchParams;
      expect(params.get('wait_end_of_query')).toBe('1');
      expect(params.get('distributed_ddl_output_mode')).toBe('throw');
      expect(Number(params.get('distributed_ddl_task_timeout'))).toBe(10); // 20 s request timeout - 10 s
    }
  });

  it.each([
    ['22.8.21.38', /^ClickHouse 22\.8\.21\.38 is older than 23\.2, the first with ReplacingMergeTree's is_deleted .*: upgrade the server/],
    ['23.1.7.30', /is older than 23\.2/],
  ])('refuses server %s before running anything', async (version, message) => {
    const client = await clientFor(server(version));
    await expect(migrate(client, 'runs_cdc')).rejects.toThrow(MigrationError);
    await expect(migrate(client, 'runs_cdc')).rejects.toThrow(message);
    expect((fake as FakeClickHouse).requests.filter((r) => r.query.startsWith('CREATE'))).toEqual([]);
  });
});

const SCOPE = { organizationId: 'o1', projectId: 'p1', environmentId: 'e1' };
const queriesOn = (client: Awaited<ReturnType<typeof clientFor>>) =>
  new RunQueries(client, 'runs_cdc', { timeoutSeconds: 10, maxMemoryBytes: 2 ** 31 }, () => Date.UTC(2026, 10, 8));

describe('reads', () => {
  it('a reset keep-alive connection is retried (a read is idempotent), a bounded number of times', async () => {
    let resets = 1;
    const queries = queriesOn(await clientFor(() => (resets-- > 0 ? 'reset' : { body: jsonRows({ n: '12' }) })));
    expect(await queries.count(SCOPE)).toBe(12);

    resets = 100;
    await expect(queries.count(SCOPE)).rejects.toThrow(QueryError);
    expect((fake as FakeClickHouse).requests.length).toBe(2 + 3); // 2 above, then READ_ATTEMPTS
  });

  it.each([
    [
      'Code: 159. DB::Exception: Timeout exceeded: elapsed 10.001 seconds, maximum: 10. (TIMEOUT_EXCEEDED) (version 24.8.4.13)',
      /^the query ran longer than 10 s \(max_execution_time\): narrow the period or the filters$/,
    ],
    [
      'Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 2.00 GiB (attempt to allocate chunk of 4 MiB), maximum: 2.00 GiB. (MEMORY_LIMIT_EXCEEDED) (version 24.8.4.13)',
      /^the query needed more than 2147483648 bytes \(max_memory_usage\): narrow the period or the filters$/,
    ],
  ])('an error in the middle of a result (server before 25.11) is the same sentence: %s', async (exception, sentence) => {
    const row = { run_id: 'r1', created_at: '2026-11-07 10:00:00.000', tags: [] };
    const queries = queriesOn(await clientFor(() => ({ body: `${jsonRows(row, row)}${exception}\n` })));
    await expect(queries.list(SCOPE)).rejects.toThrow(sentence);
  });

  it('a long parameter list travels in a multipart body, not the URL', async () => {
    const queries = queriesOn(await clientFor(() => ({ body: jsonRows({ n: '0' }) })));
    const runIds = Array.from({ length: 1000 }, (_, i) => `run_${String(i).padStart(25, '0')}`);
    await queries.count({ ...SCOPE, runIds });
    const [request] = (fake as FakeClickHouse).requests;
    expect(request?.url.length).toBeLessThan(4096);
    expect(request?.headers['content-type']).toMatch(/^multipart\/form-data/);
    expect(request?.body).toContain(runIds[999]);
  });
});

describe('replicas (migrate --cluster)', () => {
  const ids = ['run_1', 'run_2'];
  const read = async (cluster: string | undefined) => {
    const client = await clientFor(() => ({ body: '' }));
    const table = new RunsTable(client, 'runs_cdc', { initialDelayMs: 1, maxDelayMs: 1, maxRetries: 0 }, silentLogger);
    table.cluster = cluster;
    await table.currentRows('TaskRun', ids);
    return (fake as FakeClickHouse).requests.map((r) => ({ query: r.query, url: r.url }));
  };

  it('a read of own writes first makes every active replica fetch what was written', async () => {
    const [sync, select, ...rest] = await read('prod');
    expect(sync?.query).toBe('SYSTEM SYNC REPLICA ON CLUSTER prod runs_cdc.task_runs_v2_local LIGHTWEIGHT');
    expect(new URL(sync?.url ?? '', 'http://x').searchParams.get('distributed_ddl_output_mode')).toBe('throw_only_active');
    expect(select?.query).toMatch(/^SELECT \* FROM runs_cdc\.task_runs_v2 FINAL WHERE/);
    expect(rest).toEqual([]);
  });

  it('a single server reads as before', async () => {
    const requests = await read(undefined);
    expect(requests.map((r) => r.query.split(' ')[0])).toEqual(['SELECT']);
  });
});
