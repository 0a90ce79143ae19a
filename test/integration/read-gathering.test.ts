/**
 * The replication socket's reads are gathered over TCP and left alone over a Unix socket, with a
 * real Postgres streaming a real backlog (read-gathering.ts has the why; the unit test, the rules).
 */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseLsn } from '../../src/lsn.ts';
import { replicationSocket } from '../../src/source/read-gathering.ts';
import { ReplicationStream } from '../../src/source/stream.ts';
import { freshPostgres, type TestPostgres, uniqueName } from '../support/databases.ts';

const RUNS = 20_000;
let pgdb: TestPostgres;

beforeEach(async () => {
  pgdb = await freshPostgres();
  await pgdb.sql.query(`CREATE PUBLICATION runs_cdc FOR TABLE "TaskRun", task_run_v2`);
});
afterEach(async () => {
  await pgdb.close();
});

/** A slot holding one transaction of RUNS inserts. */
async function backlog(): Promise<string> {
  const slot = uniqueName('gather');
  await pgdb.sql.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  await pgdb.sql.query(
    `INSERT INTO task_run_v2 (id, "friendlyId", "taskIdentifier", payload, "traceId", "spanId", "runtimeEnvironmentId", "projectId", "organizationId", queue)
     SELECT 'run_' || g, 'f_' || g, 'task', '{"body":"' || repeat('x', 300) || '"}', 't', 's', 'env', 'proj', 'org', 'q' FROM generate_series(1, $1::int) g`,
    [RUNS],
  );
  return slot;
}

/** Read the slot's backlog through `url`; the stream's read stats and how long it took. */
async function readBacklog(url: string, slot: string) {
  let inserts = 0;
  let confirmed = 0n;
  const stream: ReplicationStream = new ReplicationStream(
    { connectionString: url, slot, publication: 'runs_cdc', confirmedLsn: () => confirmed, statusIntervalMs: 10_000 },
    (item) => {
      if (item.kind !== 'message') return;
      if (item.message.tag === 'insert') inserts += 1;
      if (item.message.tag === 'commit') {
        confirmed = parseLsn(item.message.commitEndLsn as string);
        void stream.stop();
      }
    },
  );
  await stream.run();
  return { inserts, stats: { ...stream.readStats } };
}

describe('the replication socket', () => {
  it('once paused, Node holds one read at most: the rest waits in the kernel for one large read', async () => {
    const server = createServer((peer) => {
      peer.setNoDelay(true);
      // Many small writes, each its own segment, as the walsender sends changes.
      let sent = 0;
      const send = () => {
        if (sent++ === 200) return peer.end();
        peer.write(Buffer.alloc(700));
        setImmediate(send);
      };
      send();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = replicationSocket();
    socket.connect((server.address() as AddressInfo).port, '127.0.0.1');
    let received = 0;
    let reads = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      reads += 1;
    });
    // Reading as pg does, then paused as a gathering pause or backpressure pauses it.
    await once(socket, 'data');
    socket.pause();
    await new Promise((resolve) => setTimeout(resolve, 100)); // every write has reached the kernel
    const heldByNode = socket.readableLength;
    const readsBefore = reads;
    const firstAfterResume = once(socket, 'data');
    socket.resume();
    const [first] = (await firstAfterResume) as [Buffer];
    await once(socket, 'end');
    server.close();
    expect(received).toBe(200 * 700);
    // A default socket reads every segment into Node's buffer while paused (up to its 16 or 64 KiB
    // high-water mark), one read each, and hands them on one by one.
    // Without read-ahead Node held one read: the first chunk handed on is all of it.
    expect(heldByNode).toBeGreaterThan(0);
    expect(first.length).toBe(heldByNode);
    expect(reads - readsBefore).toBeLessThan(10);
  });
});

describe('reading the replication stream', () => {
  // What gathering saves is CPU, which tests do not assert (bench/run.ts measures it); this checks
  // that the real connection's socket is the one gathered, so a change in pg cannot turn it off unseen.
  it('over TCP, the stream reads through the gathered socket', async () => {
    expect(new URL(pgdb.url).hostname).toBe('127.0.0.1');
    const { inserts, stats } = await readBacklog(pgdb.url, await backlog());
    expect(inserts).toBe(RUNS);
    // Every change's bytes went through the gathered reads (~13 MB: 20k changes of ~670 bytes): the
    // connection's socket is plain TCP without read-ahead (gathersReads), so pg's stream option took.
    expect(stats.bytes).toBeGreaterThan(RUNS * 600);
    // The read that emptied the socket after the last change, at least, was short and paused.
    expect(stats.shortReads).toBeGreaterThanOrEqual(1);
  });

  it('over a Unix socket, reads are not gathered', async (context) => {
    const dir = String((await pgdb.sql.query('SHOW unix_socket_directories')).rows[0].unix_socket_directories)
      .split(',')[0]
      ?.trim();
    const { port, username, pathname } = new URL(pgdb.url);
    if (!dir || !existsSync(`${dir}/.s.PGSQL.${port}`)) context.skip(); // a DATABASE_URL server elsewhere
    const url = `postgres://${username}@/${pathname.slice(1)}?host=${encodeURIComponent(dir as string)}&port=${port}`;
    const { inserts, stats } = await readBacklog(url, await backlog());
    expect(inserts).toBe(RUNS);
    expect(stats).toEqual({ reads: 0, shortReads: 0, heldReads: 0, bytes: 0 });
  });
});
