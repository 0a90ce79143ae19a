/**
 * The backfill command's own arguments (what to copy, as opposed to the tuning in config.ts),
 * validated before anything runs: one sentence per problem, naming the flag.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { SOURCE_TABLES, type SourceTable } from '../schema/columns.ts';
import { CursorError, isCalendarTimestamp, parseCursor } from './cursor.ts';
import type { BackfillRequest } from './job.ts';

/** `2026-01-01`, `2026-01-01T10:00`, `2026-01-01 10:00:00.123456`, optionally ending in `Z`: UTC. */
const UTC_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2}(?:\.\d{1,6})?)?)?Z?$/;

/** A UTC time as Postgres timestamp text, or an error naming the flag. */
export function parseUtcTime(text: string, flag: string): string {
  const m = UTC_TIME.exec(text.trim());
  // Trailing fractional zeros dropped, as Postgres prints: equal times are then equal strings and
  // the text order is the time order.
  const seconds = (m?.[3] ?? ':00').replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  const value = m ? `${m[1]} ${m[2] ?? '00:00'}${seconds}` : '';
  if (!m || !isCalendarTimestamp(value)) {
    throw new ConfigError(
      `${flag} ${JSON.stringify(text)} is not a UTC date or time: use 2026-01-31, 2026-01-31T12:00 or 2026-01-31T12:00:00.123Z (no other time zones)`,
    );
  }
  return value;
}

const tableList = z
  .string()
  .transform((text) =>
    text
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.enum(SOURCE_TABLES, { error: (issue) => `unknown table ${JSON.stringify(issue.input)}: use ${SOURCE_TABLES.join(' or ')}` }))
      .min(1),
  );

/** `--table`'s value (comma-separated) as source tables; ConfigError naming the flag otherwise. */
export function parseTableList(text: string): SourceTable[] {
  const parsed = tableList.safeParse(text);
  if (!parsed.success) throw new ConfigError(`--table: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`);
  return parsed.data as SourceTable[];
}

const optionsSchema = z
  .object({
    table: tableList.optional(),
    from: z.string().optional(),
    to: z.string().optional(),
    after: z.string().optional(),
    mode: z.enum(['default', 'repair'], { error: 'must be default or repair' }).default('default'),
    resume: z
      .string()
      .regex(/^bf_[0-9a-z_]+$/, 'is not a backfill job id (bf_...): runs-cdc backfill --list shows them')
      .optional(),
    dryRun: z.boolean().default(false),
    list: z.boolean().default(false),
    exactCount: z.boolean().default(false),
    createSlot: z.boolean().default(false),
  })
  .refine((o) => !(o.resume && (o.table || o.from || o.to || o.after || o.mode !== 'default')), {
    message: '--resume continues a job with its own tables, range and mode: drop --table, --from, --to, --after and --mode',
  })
  .refine((o) => !(o.resume && o.dryRun), { message: '--dry-run plans a new job; it cannot be combined with --resume' });

export type BackfillAction =
  | { kind: 'list' }
  | { kind: 'resume'; jobId: string; createSlot: boolean }
  | { kind: 'run'; request: BackfillRequest; dryRun: boolean };

const FLAG_NAMES: Record<string, string> = { dryRun: '--dry-run', exactCount: '--exact-count', createSlot: '--create-slot' };

/** Validate the command's options into what to do. Throws ConfigError with one line per problem. */
export function parseBackfillOptions(options: Record<string, unknown>): BackfillAction {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = issue.path[0];
      return key === undefined ? issue.message : `${FLAG_NAMES[String(key)] ?? `--${String(key)}`}: ${issue.message}`;
    });
    throw new ConfigError(lines.join('\n  '));
  }
  const o = parsed.data;
  if (o.list) return { kind: 'list' };
  if (o.resume) return { kind: 'resume', jobId: o.resume, createSlot: o.createSlot };
  let after = null;
  try {
    after = o.after === undefined ? null : parseCursor(o.after);
  } catch (error) {
    if (error instanceof CursorError) throw new ConfigError(`--after: ${error.message}`);
    throw error;
  }
  const request: BackfillRequest = {
    tables: (o.table ?? [...SOURCE_TABLES]) as SourceTable[],
    from: o.from === undefined ? null : parseUtcTime(o.from, '--from'),
    to: o.to === undefined ? null : parseUtcTime(o.to, '--to'),
    after,
    mode: o.mode,
    exactCount: o.exactCount,
    createSlot: o.createSlot,
  };
  if (request.from !== null && request.to !== null && request.from >= request.to) {
    throw new ConfigError(`--from ${o.from} is not before --to ${o.to}: nothing could match`);
  }
  return { kind: 'run', request, dryRun: o.dryRun };
}
