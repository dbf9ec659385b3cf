import { describe, expect, it } from 'vitest';
import { formatDurationMs, parseDurationMs } from '../../lib/duration.js';

describe('parseDurationMs', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['24h', 86_400_000],
    ['2d', 172_800_000],
    ['250ms', 250],
    ['1m30s', 90_000],
    ['1h0m5s', 3_605_000],
    ['1.5h', 5_400_000],
    ['0.5s', 500],
    ['0s', 0],
    ['  45s  ', 45_000],
  ])('parses the string %j as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it('reads a bare number (number or numeric string) as seconds', () => {
    expect(parseDurationMs(45)).toBe(45_000);
    expect(parseDurationMs('45')).toBe(45_000);
    expect(parseDurationMs(0)).toBe(0);
    expect(parseDurationMs(1.5)).toBe(1500);
    expect(parseDurationMs('2.25')).toBe(2250);
  });

  it('does not confuse "ms" with minutes followed by seconds', () => {
    expect(parseDurationMs('5ms')).toBe(5);
    expect(parseDurationMs('5m5s')).toBe(305_000);
  });

  it.each(['', '   ', 'abc', '5 minutes', '1h 30m', '5x', 'm5', '10s junk', '-5s', '-5', '1,5s', 's', '5m-'])(
    'returns null for the invalid string %j',
    (text) => {
      expect(parseDurationMs(text)).toBeNull();
    },
  );

  it('returns null for negative, NaN and infinite numbers', () => {
    expect(parseDurationMs(-1)).toBeNull();
    expect(parseDurationMs(Number.NaN)).toBeNull();
    expect(parseDurationMs(Number.POSITIVE_INFINITY)).toBeNull();
  });

  it('is stateless between calls (no sticky-regex leakage)', () => {
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('bogus')).toBeNull();
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
  });
});

describe('formatDurationMs', () => {
  it.each([
    [0, '0ms'],
    [250, '250ms'],
    [999, '999ms'],
    [1000, '1.0s'],
    [1500, '1.5s'],
    [42_340, '42.3s'],
    [60_000, '1m00s'],
    [90_000, '1m30s'],
    [125_000, '2m05s'],
    [300_000, '5m00s'],
    [3_600_000, '1h00m'],
    [5_400_000, '1h30m'],
    [86_400_000, '24h00m'],
  ])('formats %d ms as %j', (ms, text) => {
    expect(formatDurationMs(ms)).toBe(text);
  });

  it('carries a rounded-up second into the minutes instead of printing 60s', () => {
    expect(formatDurationMs(119_600)).toBe('2m00s');
    expect(formatDurationMs(59_999)).toBe('1m00s');
    expect(formatDurationMs(3_599_999)).toBe('1h00m');
    expect(formatDurationMs(999.6)).toBe('1.0s');
  });

  it('round-trips with parseDurationMs for whole minutes and hours', () => {
    for (const text of ['1m30s', '2m05s', '1h30m']) {
      const ms = parseDurationMs(text)!;
      expect(parseDurationMs(formatDurationMs(ms))).toBe(ms);
    }
  });
});
