/**
 * What the CLI prints goes through the one redaction (redact.ts): command output, errors, and
 * whatever libraries write to stdout and stderr. Query results are the exception (`printData`):
 * they are the user's data (a tag `token=abc` is a value, not a leaked secret) and contain no
 * configuration.
 */
import { redactSecrets } from '../redact.ts';

const rawStdout = process.stdout.write.bind(process.stdout) as (chunk: string) => boolean;

/** From now on, every write to stdout and stderr is redacted. */
export function redactProcessOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) =>
      write(typeof chunk === 'string' || Buffer.isBuffer(chunk) ? redactSecrets(String(chunk)) : chunk, ...rest)) as typeof stream.write;
  }
}

/** Print query results as they are. */
export function printData(text: string): void {
  rawStdout(text);
}
