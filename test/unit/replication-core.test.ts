/**
 * The replication core (applier -> durable buffer -> sink) against the in-memory sink, with fake
 * timers: the ack promise, versions, replay, TRUNCATE, read-backs and backpressure, with no
 * Postgres and no ClickHouse.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Lifecycle } from '../../src/replication/lifecycle.ts';
import { changeVersion, rankedVersion } from '../../src/schema/version.ts';
import { MemorySink } from '../../src/sink/memory-sink.ts';
import { WireTuple } from '../../src/source/wire-tuples.ts';

/** The version of a task_run_v2 change: its table ranks above "TaskRun" (schema/version.ts). */
const v2Version = (commitLsn: bigint, ordinal: number) => rankedVersion('task_run_v2', changeVersion(commitLsn, ordinal));

import { replicationCore } from '../support/core.ts';
import { FakeWal, relation, runTuple } from '../support/pgoutput.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const insert = (id: string, overrides = {}) => ({ kind: 'insert', table: 'task_run_v2', row: runTuple(id, overrides) }) as const;

describe('the ack promise', () => {
  it("confirms a transaction's end LSN only once the sink resolved the write holding its rows", async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const release = core.sink.hold();
    const tx = wal.transaction([insert('a'), insert('b')]);
    core.receive(tx.items);
    await core.settle(1_000); // the flush started long ago; the sink has not resolved it
    expect(core.confirmed).toEqual([]);
    expect(core.sink.final()).toEqual([]);
    release();
    await core.settle();
    expect(core.confirmed).toEqual([tx.endLsn]);
    expect(core.sink.final().map((r) => r.run_id)).toEqual(['a', 'b']);
  });

  it('a transaction flushed in pieces confirms nothing until its commit arrives', async () => {
    const core = replicationCore({ limits: { batchRows: 2 } });
    const wal = new FakeWal();
    const tx = wal.transaction(['a', 'b', 'c', 'd', 'e'].map((id) => insert(id)));
    core.receive(tx.items.slice(0, -1)); // everything but the commit
    await core.settle(1_000);
    expect(core.sink.final()).toHaveLength(5); // written early, in pieces of 2, 2 and 1
    expect(core.sink.writes).toEqual([2, 2, 1]);
    expect(core.confirmed).toEqual([]);
    core.receive(tx.items.slice(-1));
    await core.settle();
    expect(core.confirmed).toEqual([tx.endLsn]);
  });

  it('confirms commits in order and never past one whose rows are not written', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const first = wal.transaction([insert('a')]);
    core.receive(first.items);
    await core.settle();
    const release = core.sink.hold();
    const second = wal.transaction([insert('b')]);
    const empty = wal.transaction([]); // nothing to write, but after the second
    core.receive([...second.items, ...empty.items]);
    await core.settle(1_000);
    expect(core.confirmed).toEqual([first.endLsn]);
    release();
    await core.settle();
    expect(core.confirmed).toEqual([first.endLsn, empty.endLsn]); // the empty one confirms both at once
  });

  it('while the sink refuses, nothing more is confirmed and the failure is reported once', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const ok = wal.transaction([insert('a')]);
    core.receive(ok.items);
    await core.settle();
    core.sink.failWith(new Error('ClickHouse is gone'));
    core.receive(wal.transaction([insert('b')]).items);
    await core.settle(1_000);
    core.sink.failWith(undefined); // a later recovery does not resurrect the failed buffer
    core.receive(wal.transaction([insert('c')]).items);
    await core.settle(1_000);
    expect(core.confirmed).toEqual([ok.endLsn]);
    expect(core.failures.map((e) => e.message)).toEqual(['ClickHouse is gone']);
    expect(core.sink.final().map((r) => r.run_id)).toEqual(['a']);
  });

  it('an idle keepalive confirms the WAL end; one while a transaction is open or unwritten does not', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const release = core.sink.hold();
    const tx = wal.transaction([insert('a')]);
    core.receive([...tx.items.slice(0, 2), wal.keepalive().item]); // open and unwritten
    await core.settle(1_000);
    core.receive([...tx.items.slice(2), wal.keepalive().item]); // committed, still unwritten
    await core.settle(1_000);
    expect(core.confirmed).toEqual([]);
    release();
    await core.settle();
    expect(core.confirmed).toEqual([tx.endLsn]);
    const open = wal.transaction([insert('b')]);
    core.receive([...open.items.slice(0, 2)]);
    await core.settle(1_000); // its row is written, but the transaction is still open
    core.receive([wal.keepalive().item]);
    await core.settle();
    expect(core.confirmed).toEqual([tx.endLsn]);
    core.receive(open.items.slice(2));
    const idle = wal.keepalive();
    core.receive([idle.item]);
    await core.settle();
    expect(core.confirmed).toEqual([tx.endLsn, open.endLsn, idle.walEnd]);
  });
});

describe('waiting for a confirmed LSN', () => {
  it('resolves once the LSN is confirmable, and rejects every waiter still waiting when replication ends', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const tx = wal.transaction([insert('a')]);
    const reached = core.buffer.whenConfirmable(tx.endLsn);
    const beyond = core.buffer.whenConfirmable(tx.endLsn + 1_000n);
    core.receive(tx.items);
    await core.settle();
    await expect(reached).resolves.toBeUndefined();
    core.buffer.end(new Error('stopped'));
    await expect(beyond).rejects.toThrow('stopped');
    await expect(core.buffer.whenConfirmable(tx.endLsn + 2_000n)).rejects.toThrow('stopped'); // asked after the end
    await expect(core.buffer.whenConfirmable(tx.endLsn)).resolves.toBeUndefined(); // already reached
  });
});

describe('the supervisor lifecycle', () => {
  it('a stop or kill is never overwritten by a late start, standby or reconnect; only the end replaces it', () => {
    const life = new Lifecycle();
    life.enter('preflight');
    life.enter('streaming');
    expect(life.state).toBe('streaming');
    life.become('stopping');
    for (const late of ['streaming', 'standby', 'reconnecting'] as const) life.enter(late);
    expect(life.state).toBe('stopping');
    expect(life.halting).toBe(true);
    life.become('stopped');
    life.enter('streaming');
    expect(life.state).toBe('stopped');
    expect(life.ended).toBe(true);
  });
});

describe('versions and replay', () => {
  it('gives each change its commit LSN and ordinal, so a later change in a transaction wins', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const tx = wal.transaction([insert('a'), { kind: 'update', table: 'task_run_v2', row: runTuple('a', { status: 'EXECUTING' }) }]);
    core.receive(tx.items);
    await core.settle();
    const [row] = core.sink.final();
    expect(row).toMatchObject({ run_id: 'a', status: 'EXECUTING', _version: v2Version(tx.commitLsn, 2).toString() });
  });

  it('a transaction received again after a reconnect is written with the same versions: one row per run', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const tx = wal.transaction([insert('a'), insert('b')]);
    core.receive(tx.items.slice(0, 2));
    await core.settle();
    await core.applier.discardReceived(); // the connection dropped mid-transaction
    core.receive(tx.items); // Postgres sends it again from the slot
    await core.settle();
    expect(core.sink.stats.rowsWritten).toBe(3); // 'a' twice
    expect(core.sink.final().map((r) => [r.run_id, r._version])).toEqual([
      ['a', v2Version(tx.commitLsn, 1).toString()],
      ['b', v2Version(tx.commitLsn, 2).toString()],
    ]);
    expect(core.confirmed).toEqual([tx.endLsn]);
  });

  it('a change outside a transaction stops the applier rather than guess its version', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const tx = wal.transaction([insert('a')]);
    core.receive([tx.items[1]!, ...tx.items]); // an insert before any BEGIN
    await core.settle();
    expect(core.failures.map((e) => e.message)).toEqual([expect.stringContaining('outside a transaction')]);
    expect(core.confirmed).toEqual([]);
    expect(core.sink.final()).toEqual([]);
  });
});

describe('TRUNCATE, read-backs and schema drift', () => {
  it('TRUNCATE tombstones the earlier rows of that table after writing them; rows after it survive', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const other = { kind: 'insert', table: 'TaskRun', row: runTuple('other') } as const;
    core.receive(wal.transaction([insert('a'), other]).items);
    const tx = wal.transaction([insert('b'), { kind: 'truncate', table: 'task_run_v2' }, insert('c')]);
    core.receive(tx.items);
    await core.settle();
    expect(core.sink.final().map((r) => r.run_id)).toEqual(['other', 'c']);
    expect(core.stats.truncates).toBe(1);
    expect(core.confirmed.at(-1)).toBe(tx.endLsn);
  });

  it('--on-truncate=fail stops inside the transaction: nothing from it on is confirmed', async () => {
    const core = replicationCore({ onTruncate: 'fail' });
    const wal = new FakeWal();
    const before = wal.transaction([insert('a')]);
    core.receive(before.items);
    core.receive(wal.transaction([{ kind: 'truncate', table: 'task_run_v2' }]).items);
    await core.settle();
    expect(core.confirmed).toEqual([before.endLsn]);
    expect(core.failures.map((e) => e.message)).toEqual([expect.stringContaining('--on-truncate=fail')]);
  });

  it('a key-only delete reads the current row back through the reader and tombstones it', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    core.receive(wal.transaction([insert('a'), insert('b')]).items);
    core.receive(wal.transaction([{ kind: 'delete', table: 'task_run_v2', key: { id: 'a' } }]).items);
    core.receive(wal.transaction([{ kind: 'delete', table: 'task_run_v2', key: { id: 'never-seen' } }]).items);
    await core.settle();
    expect(core.sink.final().map((r) => r.run_id)).toEqual(['b']);
    expect(core.stats).toMatchObject({ lookups: 2, unresolvedDeletes: 1 });
  });

  it('a relation whose mapped column is gone stops before anything after it is confirmed', async () => {
    const core = replicationCore();
    const wal = new FakeWal();
    const before = wal.transaction([insert('a')]);
    core.receive(before.items);
    core.receive([{ kind: 'message', lsn: 1n, message: relation('task_run_v2', [{ name: 'id', typeOid: 25 }]) }]);
    core.receive(wal.transaction([insert('b')]).items);
    await core.settle();
    expect(core.confirmed).toEqual([before.endLsn]);
    expect(core.failures.map((e) => e.message)).toEqual([expect.stringContaining('the schema of task_run_v2 changed')]);
  });
});

describe('backpressure', () => {
  it('pauses the source at the buffer limit, never holds more, and resumes once written', async () => {
    const core = replicationCore({ limits: { batchRows: 10, maxBufferedRows: 25 } });
    const wal = new FakeWal();
    const release = core.sink.hold();
    const tx = wal.transaction(Array.from({ length: 100 }, (_, i) => insert(`r${i}`)));
    core.receive(tx.items);
    await core.settle(1_000);
    expect(core.source.paused).toBe(true);
    expect(core.buffer.bufferedRows).toBe(25);
    release();
    await core.settle(1_000);
    expect(core.source.paused).toBe(false);
    expect(core.buffer.stats.highWaterRows).toBe(25);
    expect(core.sink.final()).toHaveLength(100);
    expect(core.confirmed).toEqual([tx.endLsn]);
  });

  it('rows wait for room across many line slabs and every one is written with its own values', async () => {
    const core = replicationCore({ limits: { batchRows: 100, maxBufferedRows: 1_000 } });
    const wal = new FakeWal();
    const release = core.sink.hold();
    const payload = (i: number) => `{"run":${i},"log":"${'x'.repeat(1_000)}"}`; // ~2 MB in all: several slabs
    const tx = wal.transaction(Array.from({ length: 2_000 }, (_, i) => insert(`r${i}`, { payload: payload(i) })));
    core.receive(tx.items);
    await core.settle(1_000);
    expect(core.buffer.bufferedRows).toBe(1_000);
    release();
    await core.settle(5_000);
    const rows = core.sink.final();
    expect(rows).toHaveLength(2_000);
    expect(rows.every((row) => row.payload === payload(Number(String(row.run_id).slice(1))))).toBe(true);
    expect(core.confirmed).toEqual([tx.endLsn]);
  });

  it("changes left waiting keep their values when the connection's read buffer is reused", async () => {
    const core = replicationCore({ limits: { batchRows: 1, maxBufferedRows: 1 } });
    const wal = new FakeWal();
    const release = core.sink.hold();
    const tx = wal.transaction(['a', 'b', 'c', 'd'].map((id) => insert(id, { payload: `{"run":"${id}"}` })));
    // What each insert's tuple points into as the stream hands it over: the read buffer.
    const readBuffers = tx.items.flatMap((item) => {
      const tuple = item.kind === 'message' ? (item.message as { new?: unknown }).new : undefined;
      return tuple instanceof WireTuple ? [tuple.bytes] : [];
    });
    core.receive(tx.items); // 'a' is being written, 'b' waits for room, 'c' and 'd' wait in the inbox
    for (const bytes of readBuffers) bytes.fill(0x78); // the next read overwrites the buffer
    release();
    await core.settle(1_000);
    expect(core.sink.final().map((row) => [row.run_id, row.payload])).toEqual(['a', 'b', 'c', 'd'].map((id) => [id, `{"run":"${id}"}`]));
  });
});

describe('MemorySink keeps the RunsSink contract as the runs table does', () => {
  it('one row per sort key: the highest version wins whatever the order; a tombstone hides it', async () => {
    const sink = new MemorySink();
    const row = (version: number, status: string, deleted = 0) => ({
      run_id: 'a',
      organization_id: 'o',
      project_id: 'p',
      environment_id: 'e',
      created_at: '2026-11-01 00:00:00.000',
      source_table: 'task_run_v2',
      status,
      _version: String(version),
      _is_deleted: deleted,
    });
    await sink.write([row(2, 'EXECUTING')]);
    await sink.write([row(1, 'PENDING')]); // older, arriving late
    expect(sink.final().map((r) => r.status)).toEqual(['EXECUTING']);
    await sink.write([row(2, 'EXECUTING')]); // replayed
    expect(sink.final()).toHaveLength(1);
    await sink.write([row(3, 'EXECUTING', 1)]);
    expect(sink.final()).toEqual([]);
  });
});
