/**
 * pgoutput TupleData read as runs-cdc needs it: where each value's text lies in the message
 * bytes, nothing decoded. The daemon encodes its lines straight from those bytes
 * (transform/wire-line.ts); `textTupleOf` turns one into the text values the row path takes.
 * pg's global type parsers never run: they would turn timestamps into local-time Dates (losing the
 * zone and microseconds) and jsonb/int8 into lossy numbers.
 *
 * This replaces pg-logical-replication's readTuple and readKeyTuple on the plugin's parser (the
 * version is pinned): that one makes a Buffer view, a TextDecoder call and a type-parser call per
 * value, then an object per tuple; here a tuple is one array of offsets into the message.
 */
import type { PgoutputPlugin } from 'pg-logical-replication';
import { nullTemplate } from '../objects.ts';

/** A value's length when it is SQL NULL. */
export const NULL_VALUE = -1;
/** A value's length when it is an unchanged TOASTed value Postgres did not send. */
export const UNCHANGED_VALUE = -2;

type Relation = { readonly columns: ReadonlyArray<{ readonly name: string }> };

/** Buffer's own decoder behind toString('utf8', start, end), without the argument checks. */
export type MessageBytes = Buffer & { utf8Slice(start: number, end: number): string };

/**
 * One tuple of a change: column i of the relation is `bytes[cells[2i], cells[2i] + cells[2i+1])`.
 * The cells are a plain array of small integers: an Int32Array of this size would get its own
 * backing store outside the heap for every tuple, several times the cost.
 */
export class WireTuple {
  constructor(
    /**
     * The message the tuple came in (its old and new tuples share it): a view of the connection's
     * read buffer, which the next read may reuse. Whoever keeps a tuple past the read that brought
     * it calls keepMessageBytes first.
     */
    public bytes: MessageBytes,
    /** Per relation column: the value's start, then its length (or NULL_VALUE, UNCHANGED_VALUE). */
    readonly cells: number[],
    /** The relation's columns, in wire order (one array per RELATION message). */
    readonly columns: Relation['columns'],
    /** Where the tuple's data lies in `bytes`: every value sent is within. */
    readonly start: number,
    readonly end: number,
  ) {}

  /** Column i's text, or null (SQL NULL), or undefined (unchanged and not sent). */
  text(i: number): string | null | undefined {
    const length = this.cells[2 * i + 1] as number;
    if (length === NULL_VALUE) return null;
    if (length === UNCHANGED_VALUE) return undefined;
    const start = this.cells[2 * i] as number;
    return this.bytes.utf8Slice(start, start + length);
  }
}

/**
 * Give the tuples of one message a copy of its bytes: pg-protocol's parser moves the start of a
 * message cut off at the end of one read to the front of its buffer on the next, over messages it
 * had already handed out.
 */
export function keepMessageBytes(tuples: ReadonlyArray<WireTuple | null | undefined>): void {
  let original: MessageBytes | undefined;
  let copy: MessageBytes | undefined;
  for (const tuple of tuples) {
    if (!tuple) continue;
    if (tuple.bytes !== original) {
      original = tuple.bytes;
      copy = Buffer.from(original) as MessageBytes;
    }
    tuple.bytes = copy as MessageBytes;
  }
}

/** The library's BinaryReader: the message bytes and the read position. */
interface MessageReader {
  _b: Uint8Array;
  _p: number;
}

function messageBytes(reader: MessageReader): MessageBytes {
  const bytes = reader._b;
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as MessageBytes;
}

/**
 * Same contract as the library's readTuple: an unchanged TOASTed value ('u') takes the fallback's
 * value (the update's old tuple, from the same message) or stays unchanged.
 */
export function readWireTuple(reader: MessageReader, relation: Relation, unchangedToastFallback?: WireTuple | null): WireTuple {
  const bytes = messageBytes(reader);
  const start = reader._p;
  let at = start;
  if (at + 2 > bytes.length) throw new Error('unexpected end of pgoutput message');
  const fields = bytes.readInt16BE(at);
  at += 2;
  if (fields > relation.columns.length) throw new Error(`pgoutput tuple has ${fields} values for ${relation.columns.length} columns`);
  const cells = new Array<number>(2 * relation.columns.length).fill(UNCHANGED_VALUE);
  const fallback = unchangedToastFallback?.bytes === bytes ? unchangedToastFallback : undefined;
  let dataStart = start;
  let dataEnd = 0;
  for (let i = 0; i < fields; i++) {
    if (at + 1 > bytes.length) throw new Error('unexpected end of pgoutput message');
    const kind = bytes[at++];
    if (kind === 0x74 /* t: text */) {
      if (at + 4 > bytes.length) throw new Error('unexpected end of pgoutput message');
      const length = bytes.readInt32BE(at);
      at += 4;
      if (length < 0 || at + length > bytes.length) throw new Error('unexpected end of pgoutput message');
      cells[2 * i] = at;
      cells[2 * i + 1] = length;
      at += length;
    } else if (kind === 0x6e /* n: null */) {
      cells[2 * i + 1] = NULL_VALUE;
    } else if (kind === 0x75 /* u: unchanged TOAST */) {
      if (fallback) {
        cells[2 * i] = fallback.cells[2 * i] as number;
        cells[2 * i + 1] = fallback.cells[2 * i + 1] as number;
        // The value lies in the old tuple's data.
        dataStart = Math.min(dataStart, fallback.start);
        dataEnd = Math.max(dataEnd, fallback.end);
      }
    } else if (kind === 0x62 /* b */) {
      throw new Error('pgoutput sent a binary value, which runs-cdc never asks for (binary = false)');
    } else {
      throw new Error(`unknown pgoutput tuple value kind ${String(kind)}`);
    }
  }
  reader._p = at;
  return new WireTuple(bytes, cells, relation.columns, dataStart, Math.max(at, dataEnd));
}

type TextTuple = Record<string, string | null | undefined>;
const emptyTuples = new WeakMap<Relation['columns'], TextTuple>();

/**
 * The tuple's values as text, by column name (undefined: unchanged and not sent). A copy of the
 * relation's all-NULL tuple: one fast V8 shape per table (objects.ts), so filling it and every
 * later lookup of a column are cheap. No mapped column is named like a member of Object's
 * prototype (toString, constructor).
 */
export function textTupleOf(wire: WireTuple): TextTuple {
  let empty = emptyTuples.get(wire.columns);
  if (!empty) {
    empty = nullTemplate<string>(wire.columns.map((c) => c.name));
    emptyTuples.set(wire.columns, empty);
  }
  const tuple = { ...empty };
  for (let i = 0; i < wire.columns.length; i++) tuple[(wire.columns[i] as { name: string }).name] = wire.text(i);
  return tuple;
}

/** The library's readKeyTuple (a key-only old tuple: the replica identity's columns) over text values. */
function readKeyTuple(reader: MessageReader, relation: Relation & { keyColumns: readonly string[] }): TextTuple {
  const tuple = textTupleOf(readWireTuple(reader, relation));
  const key: TextTuple = Object.create(null);
  // A NULL here is a placeholder for a column outside the key (key columns are never NULL).
  for (const column of relation.keyColumns) key[column] = tuple[column] === null ? undefined : tuple[column];
  return key;
}

/** Make `plugin` read tuples as WireTuples; fails loudly if the library no longer has the hooks. */
export function readTuplesFromWire(plugin: PgoutputPlugin): PgoutputPlugin {
  const parser = (plugin as unknown as { parser?: { readTuple?: unknown; readKeyTuple?: unknown } }).parser;
  if (typeof parser?.readTuple !== 'function' || typeof parser.readKeyTuple !== 'function') {
    throw new Error('pg-logical-replication changed: PgoutputPlugin has no parser.readTuple/readKeyTuple to replace (runs-cdc pins 2.5.0)');
  }
  parser.readTuple = readWireTuple;
  parser.readKeyTuple = readKeyTuple;
  return plugin;
}
