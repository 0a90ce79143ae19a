import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../src/logger.ts';

/** A logger at `level` whose JSON lines the test can read. */
export function capturingLogger(level = 'warn'): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino(
    { level },
    new Writable({
      write: (chunk, _encoding, done) => {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  return { log, lines };
}
