import pino, { type Logger } from 'pino';

export type { Logger };

/** JSON lines by default; human-readable when stderr is a terminal. Logs go to stderr so that
 * command output on stdout stays clean. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY) {
    return pino({ level }, pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } }));
  }
  return pino({ level }, pino.destination(2));
}

/** For tests and library use: logs nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
