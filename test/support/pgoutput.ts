/**
 * Stream items as ReplicationStream delivers them (decoded pgoutput messages whose tuples are read
 * from real TupleData bytes, keepalives), built by hand: for unit tests of the replication core and
 * the encoders without Postgres.
 */
import type { Pgoutput } from 'pg-logical-replication';
import type { Lsn } from '../../src/lsn.ts';
import { SOURCE_COLUMNS, type SourceTable } from '../../src/schema/columns.ts';
import type { StreamItem } from '../../src/source/stream.ts';
import { readWireTuple, type WireTuple } from '../../src/source/wire-tuples.ts';
import type { Tuple } from '../../src/transform/row.ts';

/** LSN text as pgoutput's message fields carry it: padded. */
const padded = (lsn: Lsn): string =>
  `${(lsn >> 32n).toString(16).toUpperCase().padStart(8, '0')}/${(lsn & 0xffffffffn).toString(16).toUpperCase().padStart(8, '0')}`;

/** pgoutput TupleData: Int16 count, then per value 't' Int32 length bytes | 'n' (NULL) | 'u' (unchanged TOAST, undefined). */
export function tupleData(values: ReadonlyArray<string | null | undefined>): Buffer {
  const parts: Buffer[] = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const value of values) {
    if (value === null) parts.push(Buffer.from('n'));
    else if (value === undefined) parts.push(Buffer.from('u'));
    else {
      const text = Buffer.from(value, 'utf8');
      const length = Buffer.alloc(4);
      length.writeInt32BE(text.length);
      parts.push(Buffer.from('t'), length, text);
    }
  }
  return Buffer.concat(parts);
}

/** The fake relations' columns: every mapped column, in the mapping's order. */
const MAPPED_COLUMNS = SOURCE_COLUMNS.map((c) => ({ name: c.source }));

/**
 * A change's tuples as the stream delivers them: both written into one message's bytes and read
 * back, the new tuple's unchanged (undefined) values taken from the old one as Postgres's reader does.
 */
export function wireTuples(
  old: Tuple | null,
  next: Tuple | null,
  columns: ReadonlyArray<{ name: string }> = MAPPED_COLUMNS,
): { old: WireTuple | null; new: WireTuple | null } {
  const data = (tuple: Tuple) => tupleData(columns.map((c) => tuple[c.name]));
  const bytes = Buffer.concat([old ? data(old) : Buffer.alloc(0), next ? data(next) : Buffer.alloc(0)]);
  const reader = { _b: bytes, _p: 0 };
  const oldWire = old ? readWireTuple(reader, { columns }) : null;
  return { old: oldWire, new: next ? readWireTuple(reader, { columns }, oldWire) : null };
}

export function relation(name: string, columns: Array<{ name: string; typeOid: number }> = []): Pgoutput.MessageRelation {
  return {
    tag: 'relation',
    relationOid: 1,
    schema: 'public',
    name,
    replicaIdentity: 'full', // as pg-logical-replication parses it
    columns,
    keyColumns: [],
  } as unknown as Pgoutput.MessageRelation;
}

/** Every mapped column SQL NULL: a column absent from a tuple means "unchanged TOAST, not sent". */
const ALL_NULL: Tuple = Object.fromEntries(SOURCE_COLUMNS.map((c) => [c.source, null]));

/** A run's full tuple as Postgres sends it (text values), `overrides` by source column name. */
export function runTuple(id: string, overrides: Tuple = {}): Tuple {
  return {
    ...ALL_NULL,
    id,
    number: '1',
    friendlyId: `run_${id}`,
    status: 'PENDING',
    taskIdentifier: 'send-email',
    createdAt: '2026-11-01 00:00:00.000',
    updatedAt: '2026-11-01 00:00:00.000',
    organizationId: 'org_1',
    projectId: 'proj_1',
    runtimeEnvironmentId: 'env_1',
    payload: '{"n":1}',
    ...overrides,
  };
}

export type FakeChange =
  | { kind: 'insert'; table: SourceTable; row: Tuple }
  | { kind: 'update'; table: SourceTable; row: Tuple; old?: Tuple }
  | { kind: 'delete'; table: SourceTable; old?: Tuple; key?: Tuple }
  | { kind: 'truncate'; table: SourceTable };

function changeMessage(change: FakeChange): Pgoutput.Message {
  const rel = relation(change.table);
  switch (change.kind) {
    case 'insert':
      return { tag: 'insert', relation: rel, new: wireTuples(null, change.row).new } as unknown as Pgoutput.Message;
    case 'update':
      return { tag: 'update', relation: rel, key: null, ...wireTuples(change.old ?? null, change.row) } as unknown as Pgoutput.Message;
    case 'delete':
      return {
        tag: 'delete',
        relation: rel,
        old: wireTuples(change.old ?? null, null).old,
        key: change.key ?? null,
      } as unknown as Pgoutput.Message;
    case 'truncate':
      return { tag: 'truncate', relations: [rel], cascade: false, restartIdentity: false } as unknown as Pgoutput.Message;
  }
}

/** A WAL that hands out increasing LSNs: each transaction's items and its commit-end LSN. */
export class FakeWal {
  private lsn = 0x1_0000n;

  transaction(changes: readonly FakeChange[], commitMs = 1_000): { items: StreamItem[]; endLsn: Lsn; commitLsn: Lsn } {
    const commitLsn = this.lsn + BigInt(100 * (changes.length + 1));
    const endLsn = commitLsn + 50n;
    this.lsn = endLsn + 10n;
    const commitTime = BigInt(commitMs) * 1000n;
    const message = (lsn: Lsn, m: unknown): StreamItem => ({ kind: 'message', lsn, message: m as Pgoutput.Message });
    return {
      commitLsn,
      endLsn,
      items: [
        message(commitLsn, { tag: 'begin', commitLsn: padded(commitLsn), commitTime, xid: 1 }),
        ...changes.map((change, i) => message(commitLsn - 90n + BigInt(i), changeMessage(change))),
        message(endLsn, { tag: 'commit', flags: 0, commitLsn: padded(commitLsn), commitEndLsn: padded(endLsn), commitTime }),
      ],
    };
  }

  /** A keepalive reporting the WAL end past everything handed out so far (plus `ahead` bytes). */
  keepalive(ahead = 1_000n): { item: StreamItem; walEnd: Lsn } {
    const walEnd = this.lsn + ahead;
    return { item: { kind: 'keepalive', walEnd }, walEnd };
  }
}
