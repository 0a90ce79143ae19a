/**
 * Where encoded lines live: UTF-8 bytes in shared slabs outside the JS heap, each line a view of
 * its slab. The daemon buffers up to a few batches of lines; as strings they were copied by every
 * young-generation collection they survived, then joined into one body and encoded to UTF-8 once
 * more for the socket. As views they are written once, and the insert body is one copy of them.
 * Pure: no I/O.
 */

/** Lines are packed into slabs of this size (a longer line gets a slab of its own). */
const SLAB_BYTES = 256 * 1024;

export class LineSlab {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  /**
   * The slab to write the next line into, from `start`, with room for at least `maxBytes`. A slab
   * is never rewritten: earlier lines keep theirs, and it is freed once none of them is held.
   */
  reserve(maxBytes: number): Buffer {
    if (this.used + maxBytes > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, maxBytes));
      this.used = 0;
    }
    return this.slab;
  }

  /** Where the next line starts in the slab `reserve` returned. */
  get start(): number {
    return this.used;
  }

  /** The line written from `start` up to `end`, as a view; later lines go after it. */
  finish(end: number): Buffer {
    const line = this.slab.subarray(this.used, end);
    this.used = end;
    return line;
  }

  /** A line already encoded as text, copied into the slab as UTF-8. */
  text(line: string): Buffer {
    const slab = this.reserve(line.length * 3); // UTF-8 takes at most 3 bytes per UTF-16 unit
    return this.finish(this.used + slab.write(line, this.used, 'utf8'));
  }
}

/** The process's slab for lines encoded outside the daemon's applier (row path, backfill, tests). */
export const sharedLines = new LineSlab();
