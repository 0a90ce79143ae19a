/**
 * Hostile Postgres texts for every column kind of the mapping: valid values at the edges, and
 * texts no Postgres column of that type would send, which must still be coerced, never crash. For
 * the encoder's unit tests (tuple-line, tab-separated) and their seeded fuzz.
 */
import type { ColumnKind } from '../../src/schema/columns.ts';

const STRINGS = [
  '',
  '\\',
  '\\N',
  'a\tb',
  'a\nb',
  'a\r\nb',
  "it's",
  "['x']",
  '\\t',
  '\u0000\u0001\u001f',
  'ü€😀',
  ' lead & trail ',
  '{"n":1,"note":"line one\\nline two \\"quoted\\"","tab":"a\\tb"}',
  `{"blob":"${'x'.repeat(3000)}"}`,
  // Long enough for the wire encoder's native path: backslashes only, first and last; and a tab.
  `\\{"path":"C:\\\\runs\\\\${'é'.repeat(40)}","quote":"\\"x\\""}\\`,
  `${'x'.repeat(70)}\t${'y'.repeat(10)}\\\r\n`,
];

export const HOSTILE_TEXTS: Readonly<Record<ColumnKind, readonly string[]>> = {
  text: STRINGS,
  json: STRINGS,
  int: ['0', '-0', '7', '-2147483648', '2147483647', '2147483648', '-2147483649', '007', '1e3', '', ' 1', '99999999999', 'abc'],
  float: ['0', '1.25', '-1.5e-7', '1e+20', '0.1', '-0', 'NaN', 'Infinity', '-Infinity', '1e400', '', 'abc', '12345678901234567890'],
  bool: ['t', 'f', 'true', 'false', 'yes', '', 'T'],
  timestamp: [
    '2026-06-01 00:00:00',
    '2026-06-01 00:00:00.1',
    '2026-06-01 00:00:00.12',
    '2026-06-01 00:00:00.123',
    '2026-06-01 00:00:00.123456',
    '2026-06-01 00:00:00.1234567',
    '2026-06-01 00:00:00.',
    '1900-01-01 00:00:00',
    '1899-12-31 23:59:59.999',
    '2299-12-31 23:59:59.999',
    '2300-01-01 00:00:00',
    'infinity',
    '-infinity',
    '2026-06-01T00:00:00',
    '2026-06-01 00:00:00 BC',
    '２026-06-01 00:00:00',
    '2026-6-01 00:00:00',
    '',
  ],
  textArray: [
    '{}',
    '{a}',
    '{a,b}',
    '{NULL}',
    '{"NULL"}',
    '{a,NULL,c}',
    '{NULLS,xNULL}',
    '{a}b}',
    '{a,b}}',
    '{a,}',
    "{o'reilly,x}",
    '{"a b","c,d"}',
    '{"a\\"b"}',
    '{"\\\\"}',
    '{a\\b}',
    '{"a\tb","x\ny"}',
    '{{a,b},{c,d}}',
    '[1:2]={a,b}',
    '{é,😀}',
    '{',
    '{a',
    '{,}',
    '',
  ],
};
