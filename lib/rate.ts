// Transfer rates in profiles, as operators write them: "50MB/s", "200Mbit/s", "1.5GiB/s", or
// bytes per second as a plain number. Activities receive bytes per second.

const UNIT_BYTES: Record<string, number> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  KiB: 1024,
  MB: 1e6,
  MiB: 1024 ** 2,
  GB: 1e9,
  GiB: 1024 ** 3,
  bit: 1 / 8,
  kbit: 1e3 / 8,
  Kbit: 1e3 / 8,
  Mbit: 1e6 / 8,
  Gbit: 1e9 / 8,
};

/** "50MB/s", "200 Mbit/s" or a number of bytes per second → bytes per second (whole), or null. */
export function parseRate(input: string | number): number | null {
  if (typeof input === 'number') return Number.isFinite(input) && input > 0 ? Math.round(input) : null;
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]+)\/s$/.exec(input.trim());
  const unit = m && Object.hasOwn(UNIT_BYTES, m[2]!) ? UNIT_BYTES[m[2]!] : undefined;
  if (!m || unit === undefined) return null;
  const bps = Math.round(Number(m[1]) * unit);
  return bps > 0 ? bps : null;
}

/** Slowest cap a profile may give: below it a release of a few hundred MB takes most of a day. */
export const MIN_RATE_BPS = 64_000;

/** Why `bps` is out of bounds for a profile rate, or null. */
export function rateBoundsProblem(bps: number): string | null {
  return bps < MIN_RATE_BPS ? `must be at least 64kB/s (${MIN_RATE_BPS} bytes per second)` : null;
}

/** "50 MB/s"-style text (decimal units, three significant digits) for operators. */
export function formatRate(bps: number): string {
  const [div, unit] = bps >= 1e9 ? [1e9, 'GB/s'] : bps >= 1e6 ? [1e6, 'MB/s'] : bps >= 1e3 ? [1e3, 'kB/s'] : [1, 'B/s'];
  return `${Number((bps / div).toPrecision(3))} ${unit}`;
}
