import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bodyBytes, parseClientInsert } from '../../src/sink/chdb-inserts.ts';

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
