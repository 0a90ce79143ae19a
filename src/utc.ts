/** `2026-11-23 10:00:00.000`: a UTC time as Postgres timestamp(3) and ClickHouse DateTime64(3, 'UTC')
 * both read and print it. One place, so every module writes times the same way. */
export function utcTimestamp(at: Date | number = new Date()): string {
  return new Date(at).toISOString().replace('T', ' ').replace('Z', '');
}
