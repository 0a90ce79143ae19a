/**
 * Where encoded lines live: UTF-8 bytes in shared slabs outside the JS heap, each line a view of
 * its slab. The daemon buffers up to a few batches of lines; as strings they were copied by every
 * young-generation collection they survived, then joined into one body and encoded to UTF-8 once
 * more for the socket. As views they are written once, each followed by its line feed, and lines
 * written one after another go to the socket as one piece of their slab (insertChunks), uncopied.
 * Pure: no I/O.
 */

/** Lines are packed into slabs of this size (a longer line gets a slab of its own). */
const SLAB_BYTES = 256 * 1024;

const LINE_FEED = 0x0a;
/**
 * Every slab's memory: a line in one is followed by its line feed, and its bytes do not change
 * while the line is held (a recycled slab is rewritten only once none of its lines is).
 */
const slabMemory = new WeakSet<ArrayBufferLike>();

function newSlab(bytes: number): Buffer {
  const slab = Buffer.allocUnsafeSlow(bytes);
  slabMemory.add(slab.buffer);
  return slab;
}

/**
 * How a slab learns its lines are no longer held, by the sequence numbers of the rows that carry
 * them (the daemon's row buffer: rows are appended in order and written and dropped in order).
 */
export interface LineRecycling {
  /** The sequence number of the last row appended so far. */
  readonly appendedSeq: number;
  /** Every row up to this sequence number is written and no longer held. */
  readonly writtenSeq: number;
}

/** Lines of one change written but not yet appended as rows: a moved row's tombstone and the row. */
const LINES_PER_CHANGE = 2;
/** Spare slabs kept for reuse; more are left to the garbage collector. */
const MAX_SPARE_SLABS = 32;

export class LineSlab {
  private slab = newSlab(SLAB_BYTES);
  private used = 0;
  /** Filled slabs waiting for their rows to be written: each with the last row that may hold a line of it. */
  private retired: Array<{ slab: Buffer; lastSeq: number }> = [];
  private spare: Buffer[] = [];

  /**
   * Without `recycling`, a slab is never rewritten: earlier lines keep theirs, and it is freed
   * once none of them is held. With it, a filled slab is reused once every row that may hold one
   * of its lines is written: allocating a fresh slab for every 256 KiB of lines made V8 run a full
   * collection every ~100 ms (external memory), a tenth of the daemon's time on large rows.
   */
  constructor(private readonly recycling?: LineRecycling) {}

  /**
   * The slab to write the next line into, from `start`, with room for at least `maxBytes` (and
   * its line feed).
   */
  reserve(maxBytes: number): Buffer {
    if (this.used + maxBytes + 1 > this.slab.length) {
      this.slab = this.nextSlab(maxBytes + 1);
      this.used = 0;
    }
    return this.slab;
  }

  private nextSlab(bytes: number): Buffer {
    // A huge line gets a slab of its own; the slab it leaves is not reused, only collected.
    if (!this.recycling || bytes > SLAB_BYTES) return newSlab(Math.max(SLAB_BYTES, bytes));
    // Lines of the change being encoded may not be appended yet: they get the next numbers.
    this.retired.push({ slab: this.slab, lastSeq: this.recycling.appendedSeq + LINES_PER_CHANGE });
    const written = this.recycling.writtenSeq;
    while (this.retired.length > 0 && (this.retired[0] as { lastSeq: number }).lastSeq <= written) {
      const { slab } = this.retired.shift() as { slab: Buffer };
      // Only ordinary slabs are kept: one made for a huge line goes back to the garbage collector.
      if (this.spare.length < MAX_SPARE_SLABS && slab.length === SLAB_BYTES) this.spare.push(slab);
    }
    return this.spare.pop() ?? newSlab(SLAB_BYTES);
  }

  /** Where the next line starts in the slab `reserve` returned. */
  get start(): number {
    return this.used;
  }

  /** The line written from `start` up to `end`, as a view (its line feed follows it); later lines go after it. */
  finish(end: number): Buffer {
    const line = this.slab.subarray(this.used, end);
    this.slab[end] = LINE_FEED;
    this.used = end + 1;
    return line;
  }

  /** A line already encoded as text, copied into the slab as UTF-8. */
  text(line: string): Buffer {
    const slab = this.reserve(line.length * 3); // UTF-8 takes at most 3 bytes per UTF-16 unit
    return this.finish(this.used + slab.write(line, this.used, 'utf8'));
  }
}

/**
 * The body of one TabSeparated insert of `lines`, as the pieces to send: each line with its line
 * feed, consecutive lines of one slab as one piece of it (no copy); other lines are copied.
 */
export function insertChunks(lines: Iterable<Uint8Array>): Buffer[] {
  const chunks: Buffer[] = [];
  let memory: ArrayBufferLike | undefined;
  let start = 0;
  let end = 0;
  const close = () => {
    if (memory) chunks.push(Buffer.from(memory, start, end - start));
    memory = undefined;
  };
  for (const line of lines) {
    if (memory === line.buffer && end === line.byteOffset) {
      end += line.length + 1;
      continue;
    }
    close();
    if (slabMemory.has(line.buffer)) {
      memory = line.buffer;
      start = line.byteOffset;
      end = start + line.length + 1;
    } else {
      const copy = Buffer.allocUnsafe(line.length + 1);
      copy.set(line);
      copy[line.length] = LINE_FEED;
      chunks.push(copy);
    }
  }
  close();
  return chunks;
}

/** The process's slab for lines encoded outside the daemon's applier (row path, backfill, tests). */
export const sharedLines = new LineSlab();
