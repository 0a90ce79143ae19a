import { describe, expect, it } from 'vitest';
import { insertChunks, LineSlab } from '../../src/sink/line-slab.ts';

describe('line slabs and the insert body', () => {
  it('send lines written one after another as one uncopied piece, and anything else line by line, in the order given', () => {
    const slab = new LineSlab();
    const [a, b, c] = ['a\tb', 'ü\t\\N', 'c'].map((text) => slab.text(text)) as [Buffer, Buffer, Buffer];
    const foreign = Buffer.from('x\ty'); // not from a slab: what follows it may be anything
    const huge = slab.text('h'.repeat(300_000)); // a slab of its own

    const together = insertChunks([a, b, c]);
    expect(together).toHaveLength(1);
    expect(together[0]?.buffer).toBe(a.buffer); // a view of the slab, not a copy
    expect(Buffer.concat(together).toString()).toBe('a\tb\nü\t\\N\nc\n');

    const mixed = insertChunks([a, foreign, b, c, huge]);
    expect(mixed).toHaveLength(4);
    expect(Buffer.concat(mixed).toString()).toBe(`a\tb\nx\ty\nü\t\\N\nc\n${'h'.repeat(300_000)}\n`);

    // Out of order (rows of two targets interleaved): each run of consecutive lines is one piece.
    expect(Buffer.concat(insertChunks([c, a, b])).toString()).toBe('c\na\tb\nü\t\\N\n');
    expect(insertChunks([])).toEqual([]);
  });

  it('never rewrites a slab: earlier lines keep their bytes while later ones are written', () => {
    const slab = new LineSlab();
    const lines = Array.from({ length: 20_000 }, (_, i) => slab.text(`line ${i}`));
    expect(lines.map((line) => line.toString())).toEqual(Array.from({ length: 20_000 }, (_, i) => `line ${i}`));
    expect(Buffer.concat(insertChunks(lines)).toString()).toBe(Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join(''));
  });

  it('with recycling, reuses a filled slab only once every row that may hold one of its lines is written', () => {
    const rows = { appendedSeq: 0, writtenSeq: 0 };
    const slab = new LineSlab(rows);
    const text = (i: number) => `${String(i).padStart(6, '0')}:${'x'.repeat(1_000)}`;
    const lines: Buffer[] = [];
    const memories = new Set<ArrayBufferLike>();
    // Four slabs' worth of lines, none written: every line keeps its bytes, every slab is new.
    for (let i = 0; i < 1_000; i++) {
      lines.push(slab.text(text(i)));
      rows.appendedSeq += 1;
      memories.add((lines.at(-1) as Buffer).buffer);
    }
    expect(memories.size).toBeGreaterThan(3);
    expect(lines.every((line, i) => line.toString() === text(i))).toBe(true);
    // All but the last change written: the first slabs come back; the last line's is not rewritten.
    rows.writtenSeq = rows.appendedSeq - 1;
    const last = lines.at(-1) as Buffer;
    const reused = new Set<ArrayBufferLike>();
    for (let i = 0; i < 600; i++) {
      const line = slab.text(text(i));
      rows.appendedSeq += 1;
      if (line.buffer !== last.buffer && memories.has(line.buffer)) reused.add(line.buffer);
      if (line.buffer === last.buffer) expect(line.byteOffset).toBeGreaterThan(last.byteOffset + last.length);
    }
    expect(reused.size).toBeGreaterThan(0);
    expect(last.toString()).toBe(text(999));
  });
});
