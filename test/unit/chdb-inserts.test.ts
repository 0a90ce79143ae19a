import { Readable } from 'node:stream';
import { ClickHouseError } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import { bodyBytes, type ChdbConnection, parseClientInsert, withByteInserts } from '../../src/sink/chdb-inserts.ts';

describe('parseClientInsert', () => {
  it("reads the client's statements", () => {
    expect(parseClientInsert('INSERT INTO db.task_runs_v2 (run_id, _version) FORMAT TabSeparated')).toEqual({
      table: 'db.task_runs_v2',
      columns: ['run_id', '_version'],
      format: 'TabSeparated',
    });
    expect(parseClientInsert('INSERT INTO db.t FORMAT JSONEachRow')).toEqual({ table: 'db.t', format: 'JSONEachRow' });
  });

  it('leaves any other statement to chDB', () => {
    for (const query of [
      'INSERT INTO db.t (* EXCEPT (n)) FORMAT JSONEachRow',
      'INSERT INTO `my db`.t FORMAT JSONEachRow',
      'INSERT INTO db.t (a,b) FORMAT TabSeparated',
      'INSERT INTO db.t FORMAT Native',
      'INSERT INTO db.t FORMAT TabSeparated; DROP TABLE db.t',
      'insert into db.t format TabSeparated',
      'INSERT INTO db.t SETTINGS async_insert = 1 FORMAT TabSeparated',
    ]) {
      expect(parseClientInsert(query), query).toBeUndefined();
    }
  });
});

describe('bodyBytes', () => {
  it('joins byte and text chunks into the bytes they spell', async () => {
    const euro = Buffer.from('€', 'utf8');
    const pooled = Buffer.from('__xyz__'); // a view into Node's shared pool, at an offset
    const view = new Uint8Array(pooled.buffer, pooled.byteOffset + 2, 3);
    const chunks = [Buffer.from('a\t'), euro.subarray(0, 1), euro.subarray(1), 'é\n', view];
    expect((await bodyBytes(Readable.from(chunks, { objectMode: true }))).toString('utf8')).toBe('a\t€é\nxyz');
    expect((await bodyBytes('plain')).toString('utf8')).toBe('plain');
  });

  it('refuses a chunk that is not bytes or text', async () => {
    await expect(bodyBytes(Readable.from([{ row: 1 }], { objectMode: true }))).rejects.toThrow(/bytes or text, not object/);
  });
});

/** A stand-in for chDB's connection that records what each insert path was given (the adapter's
 * routing is under test here; test/integration/chdb-inserts.test.ts runs it against chDB). */
function recordingConnection(rawInsertFails?: Error) {
  const raw: Array<Parameters<ChdbConnection['chdb']['rawInsert']>[0]> = [];
  const own: Array<Parameters<ChdbConnection['insert']>[0]> = [];
  const connection: ChdbConnection = {
    insert: async (params) => {
      own.push(params);
      return { query_id: 'own', response_headers: {} };
    },
    chdb: {
      rawInsert: async (params) => {
        raw.push(params);
        if (rawInsertFails) throw rawInsertFails;
        return { rowsWritten: 2, bytesWritten: 8, elapsed: 0.5 };
      },
    },
  };
  return { connection, raw, own };
}

describe('withByteInserts', () => {
  const query = 'INSERT INTO db.t (a, b) FORMAT TabSeparated';

  it("hands the client's insert to the raw insert as one Buffer, with the engine's settings and the signal", async () => {
    const { connection, raw, own } = recordingConnection();
    const signal = new AbortController().signal;
    const result = await withByteInserts(connection).insert({
      query,
      values: Readable.from([Buffer.from('1\tx\n'), Buffer.from('2\ty\n')], { objectMode: false }),
      clickhouse_settings: { async_insert: 0, date_time_input_format: 'basic', wait_end_of_query: 1, default_format: 'JSON' },
      abort_signal: signal,
    });
    expect(own).toEqual([]);
    expect(raw).toHaveLength(1);
    expect(raw[0]).toMatchObject({ table: 'db.t', columns: ['a', 'b'], format: 'TabSeparated', signal });
    expect(raw[0]?.values.toString()).toBe('1\tx\n2\ty\n');
    // HTTP-only settings and default_format are left out, as chDB's own insert leaves them out.
    expect(raw[0]?.settings).toEqual({ async_insert: 0, date_time_input_format: 'basic' });
    expect(result.summary).toMatchObject({ written_rows: '2', written_bytes: '8', elapsed_ns: '500000000' });
  });

  it("leaves other statements to chDB's own insert, untouched", async () => {
    const { connection, raw, own } = recordingConnection();
    const params = { query: 'INSERT INTO db.t (* EXCEPT (n)) FORMAT JSONEachRow', values: '{"s":"x"}\n' };
    await withByteInserts(connection).insert(params);
    expect(raw).toEqual([]);
    expect(own).toEqual([params]);
  });

  it('reports an engine error as a ClickHouseError with its code and type', async () => {
    const { connection } = recordingConnection(new Error('Code: 60. DB::Exception: Table db.t does not exist. (UNKNOWN_TABLE)'));
    const failed = await withByteInserts(connection)
      .insert({ query, values: '1\tx\n' })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(ClickHouseError);
    expect(failed).toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
  });

  it('starts no write for an insert already aborted', async () => {
    const { connection, raw } = recordingConnection();
    const controller = new AbortController();
    controller.abort();
    await expect(withByteInserts(connection).insert({ query, values: '1\tx\n', abort_signal: controller.signal })).rejects.toThrow(
      /abort/i,
    );
    expect(raw).toEqual([]);
  });

  it("runs the connection's other methods on the connection itself, where its private state is", () => {
    // chDB's connection keeps its session in private fields: called on a proxy, a method would throw.
    class PrivateStateConnection {
      #closed = false;
      insert = recordingConnection().connection.insert;
      chdb = recordingConnection().connection.chdb;
      close() {
        this.#closed = true;
      }
      get closed() {
        return this.#closed;
      }
    }
    const wrapped = withByteInserts(new PrivateStateConnection());
    wrapped.close();
    expect(wrapped.closed).toBe(true);
  });
});
