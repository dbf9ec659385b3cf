// Durations in profiles are human strings ("90s", "5m", "1h30m") or plain seconds.
// Workflows receive milliseconds so tests can run every timer in seconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "1h30m", "45s", "250ms" or a number of seconds; returns milliseconds or null. */
export function parseDurationMs(input: string | number): number | null {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : null;
  const text = input.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? Math.round(total) : null;
}

/** Shortest duration a profile may give: tight polling loops and instant deadlines are mistakes. */
export const MIN_DURATION_MS = 100;
/** Longest: Node's setTimeout (2^31-1 ms, about 24.8 days); a longer delay fires at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Why `ms` is out of bounds for a profile duration, or null when it is within them. */
export function durationBoundsProblem(ms: number): string | null {
  if (!Number.isFinite(ms) || ms > MAX_DURATION_MS) return 'must be at most 24d20h31m23s (2^31-1 ms, the longest timer Node.js can run)';
  if (ms < MIN_DURATION_MS) return `must be at least ${MIN_DURATION_MS}ms`;
  return null;
}

/** "2m 05s"-style text for operators. */
export function formatDurationMs(ms: number): string {
  // Round once, up front, so 119.6 s reads "2m00s" rather than "1m60s".
  if (ms < 999.5) return `${Math.round(ms)}ms`;
  if (ms < 59_950) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.round(ms / 1000);
  const m = Math.floor(total / 60);
  if (m < 60) return `${m}m${String(total % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
