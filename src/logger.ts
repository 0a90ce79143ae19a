import pino, { type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { redactSecrets } from './redact.ts';

export type { Logger };

/** Every log line passes the one redaction (redact.ts) on its way out. */
function redacting(inner: DestinationStream): DestinationStream {
  return { write: (line: string) => inner.write(redactSecrets(line)) };
}

/** JSON lines by default; human-readable when stderr is a terminal. Logs go to stderr so that
 * command output on stdout stays clean. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY) return pino({ level }, redacting(pretty({ destination: 2, colorize: true, sync: true })));
  return pino({ level }, redacting(pino.destination({ dest: 2, sync: true })));
}

/** For tests and library use: logs nothing. */
export const silentLogger: Logger = pino({ level: 'silent' });
