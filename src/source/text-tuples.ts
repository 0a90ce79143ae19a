/**
 * pgoutput TupleData read as runs-cdc needs it: every value as the text Postgres sent. pg's global
 * type parsers would turn timestamps into local-time Dates (losing the zone and microseconds) and
 * jsonb/int8 into lossy numbers, so no parser runs at all.
 *
 * This replaces pg-logical-replication's readTuple on the plugin's parser (the version is pinned):
 * that one makes a Buffer view, a TextDecoder call and a type-parser call per value, a fifth of the
 * daemon's main thread during a catch-up (bench/run.ts). Here each value is one utf8Slice of the
 * message buffer.
 */
import type { PgoutputPlugin } from 'pg-logical-replication';
import { nullTemplate } from '../objects.ts';

/** The library's BinaryReader: the message bytes and the read position. */
interface MessageReader {
  _b: Uint8Array;
  _p: number;
}

type TextTuple = Record<string, string | Buffer | null | undefined>;

/** Buffer's own decoder behind toString('utf8', start, end), without the argument checks. */
type MessageBytes = Buffer & { utf8Slice(start: number, end: number): string };

function messageBytes(reader: MessageReader): MessageBytes {
  const bytes = reader._b;
  return (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as MessageBytes;
}

type Relation = { columns: ReadonlyArray<{ name: string }> };
const emptyTuples = new WeakMap<Relation, TextTuple>();

/**
 * A copy of the relation's all-NULL tuple: one fast V8 shape per table (objects.ts), so this read
 * and every later lookup of a column are cheaper. Unlike the library's tuple it has Object's
 * prototype; no mapped column is named like one of its members (toString, constructor).
 */
function emptyTupleOf(relation: Relation): TextTuple {
  let empty = emptyTuples.get(relation);
  if (!empty) {
    empty = nullTemplate<string>(relation.columns.map((c) => c.name));
    emptyTuples.set(relation, empty);
  }
  return { ...empty };
}

/** Same contract as the library's readTuple: 'u' (unchanged TOAST) takes the fallback's value or is undefined. */
export function readTextTuple(reader: MessageReader, relation: Relation, unchangedToastFallback?: TextTuple | null): TextTuple {
  const bytes = messageBytes(reader);
  let at = reader._p;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new Error('unexpected end of pgoutput message');
  };
  need(2);
  const fields = bytes.readInt16BE(at);
  at += 2;
  const tuple = emptyTupleOf(relation);
  for (let i = 0; i < fields; i++) {
    const name = (relation.columns[i] as { name: string }).name;
    need(1);
    const kind = bytes[at++];
    if (kind === 0x74 /* t: text */ || kind === 0x62 /* b: binary, never requested */) {
      need(4);
      const length = bytes.readInt32BE(at);
      at += 4;
      need(length);
      tuple[name] = kind === 0x74 ? bytes.utf8Slice(at, at + length) : Buffer.from(bytes.subarray(at, at + length));
      at += length;
    } else if (kind === 0x6e /* n: null */) {
      tuple[name] = null;
    } else if (kind === 0x75 /* u: unchanged TOAST */) {
      tuple[name] = unchangedToastFallback?.[name];
    } else {
      throw new Error(`unknown pgoutput tuple value kind ${String(kind)}`);
    }
  }
  reader._p = at;
  return tuple;
}

/** Make `plugin` read tuples with readTextTuple; fails loudly if the library no longer has the hook. */
export function readTuplesAsText(plugin: PgoutputPlugin): PgoutputPlugin {
  const parser = (plugin as unknown as { parser?: { readTuple?: unknown } }).parser;
  if (typeof parser?.readTuple !== 'function') {
    throw new Error('pg-logical-replication changed: PgoutputPlugin has no parser.readTuple to replace (runs-cdc pins 2.5.0)');
  }
  parser.readTuple = readTextTuple;
  return plugin;
}
