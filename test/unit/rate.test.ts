// Rates as profiles write them (install.maxRate) and as operators read them back.
import { describe, expect, it } from 'vitest';
import { formatRate, parseRate, rateBoundsProblem } from '../../lib/rate.js';

describe('parseRate', () => {
  it('reads decimal and binary byte units, bit units and plain bytes per second', () => {
    expect(parseRate('64kB/s')).toBe(64_000);
    expect(parseRate('64KiB/s')).toBe(65_536);
    expect(parseRate('50MB/s')).toBe(50_000_000);
    expect(parseRate('2MiB/s')).toBe(2_097_152);
    expect(parseRate('1GB/s')).toBe(1_000_000_000);
    expect(parseRate('100Mbit/s')).toBe(12_500_000);
    expect(parseRate('1 Gbit/s')).toBe(125_000_000);
    expect(parseRate(' 0.5MB/s ')).toBe(500_000);
    expect(parseRate(4096)).toBe(4096);
  });

  it('refuses what is not a rate', () => {
    for (const bad of ['50MB', '50 MB/h', 'MB/s', '-5MB/s', '5 mb/s', '1e6B/s', '5constructor/s', '0MB/s', '', 0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(parseRate(bad), String(bad)).toBeNull();
    }
  });
});

describe('rateBoundsProblem and formatRate', () => {
  it('holds a cap to at least 64 kB/s', () => {
    expect(rateBoundsProblem(63_999)).toBe('must be at least 64kB/s (64000 bytes per second)');
    expect(rateBoundsProblem(64_000)).toBeNull();
  });

  it('prints three significant digits in decimal units', () => {
    expect(formatRate(50_000_000)).toBe('50 MB/s');
    expect(formatRate(12_500_000)).toBe('12.5 MB/s');
    expect(formatRate(65_536)).toBe('65.5 kB/s');
    expect(formatRate(1_610_612_736)).toBe('1.61 GB/s');
    expect(formatRate(900)).toBe('900 B/s');
  });
});
