import { expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/lsn.ts';

it('padded and unpadded LSN text parse to the same number', () => {
  expect(parseLsn('00000000/01505FE8')).toBe(parseLsn('0/1505FE8'));
  expect(parseLsn('0/1505FE8')).toBe(0x1505fe8n);
});

it('compares as 64-bit numbers, where string order is wrong', () => {
  expect(parseLsn('0/FFFFFFFF') < parseLsn('1/0')).toBe(true);
  expect('0/FFFFFFFF' < '0/10000000').toBe(false); // what string comparison would get wrong
  expect(parseLsn('0/10000000') > parseLsn('0/FFFFFFF')).toBe(true);
});

it('formats as Postgres does and round-trips', () => {
  expect(formatLsn(0x1_0000_00ffn)).toBe('1/FF');
  expect(parseLsn(formatLsn(0xabcdef01_23456789n))).toBe(0xabcdef01_23456789n);
});

it('rejects what is not an LSN', () => {
  expect(() => parseLsn('12345')).toThrow('not an LSN');
});
