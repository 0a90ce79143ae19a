import { describe, expect, it } from 'vitest';
import { convertValue } from '../../src/transform/values.ts';

describe('timestamps', () => {
  it('keep Postgres text at millisecond precision, with no time zone applied', () => {
    expect(convertValue('timestamp', false, '2026-03-04 05:06:07.089')).toEqual({ value: '2026-03-04 05:06:07.089' });
    expect(convertValue('timestamp', false, '2026-03-04 05:06:07')).toEqual({ value: '2026-03-04 05:06:07.000' });
    expect(convertValue('timestamp', false, '2026-03-04 05:06:07.5')).toEqual({ value: '2026-03-04 05:06:07.500' });
    // timestamp(6): truncated like a timestamp(3) column would store it
    expect(convertValue('timestamp', false, '2026-03-04 05:06:07.123999')).toEqual({ value: '2026-03-04 05:06:07.123' });
  });

  it('outside DateTime64 range become NULL (or the epoch when required) with a reason', () => {
    expect(convertValue('timestamp', true, 'infinity')).toMatchObject({ value: null, coercion: expect.any(String) });
    expect(convertValue('timestamp', true, '1800-01-01 00:00:00')).toMatchObject({
      value: null,
      coercion: expect.stringContaining('1900'),
    });
    expect(convertValue('timestamp', false, '2400-01-01 00:00:00')).toMatchObject({ value: '1970-01-01 00:00:00.000' });
  });

  it('NULL stays NULL when nullable', () => {
    expect(convertValue('timestamp', true, null)).toEqual({ value: null });
  });
});

describe('numbers and booleans', () => {
  it('int4 text becomes a number; anything else is reported', () => {
    expect(convertValue('int', false, '-42')).toEqual({ value: -42 });
    expect(convertValue('int', false, '2147483647')).toEqual({ value: 2147483647 });
    expect(convertValue('int', true, '2147483648')).toMatchObject({ value: null, coercion: 'not a 32-bit integer' });
    expect(convertValue('int', false, '1.5')).toMatchObject({ value: 0, coercion: 'not a 32-bit integer' });
  });

  it('float8 keeps finite values; NaN and Infinity are reported', () => {
    expect(convertValue('float', false, '12.5')).toEqual({ value: 12.5 });
    expect(convertValue('float', false, '1e-7')).toEqual({ value: 1e-7 });
    expect(convertValue('float', false, 'NaN')).toMatchObject({ value: 0, coercion: 'not a finite number' });
    expect(convertValue('float', true, 'Infinity')).toMatchObject({ value: null });
  });

  it('booleans come as t/f', () => {
    expect(convertValue('bool', false, 't')).toEqual({ value: true });
    expect(convertValue('bool', true, 'f')).toEqual({ value: false });
    expect(convertValue('bool', false, null)).toEqual({ value: false });
  });
});

describe('text, JSON and arrays', () => {
  it('text and JSON pass through byte for byte, whatever they contain', () => {
    for (const text of ['{"a": 123456789012345678901234567890}', '{"bad": ', '"\\ud800"', 'plain \u{1F600}', '']) {
      expect(convertValue('json', true, text)).toEqual({ value: text });
      expect(convertValue('text', false, text)).toEqual({ value: text });
    }
  });

  it('a non-nullable text NULL becomes the empty string', () => {
    expect(convertValue('text', false, null)).toEqual({ value: '' });
    expect(convertValue('json', true, null)).toEqual({ value: null });
  });

  it('text[] literals are parsed with quoting, escapes and NULL elements', () => {
    expect(convertValue('textArray', false, '{}')).toEqual({ value: [] });
    expect(convertValue('textArray', false, '{a,"b c","q\\"x",NULL,"NULL"}')).toEqual({ value: ['a', 'b c', 'q"x', '', 'NULL'] });
    expect(convertValue('textArray', false, null)).toEqual({ value: [] });
  });
});
