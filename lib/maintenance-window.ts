// Maintenance windows: "waves may start on these days between these local times, in this zone"
// (hawkBit-style). Pure and deterministic — the campaign workflow calls it with workflow time —
// and built on Intl only, so the IANA time zone rules (DST) come from the runtime's ICU data.
//
// A window belongs to the day it opens on: `days: [fri], start: "22:00", end: "04:00"` is open
// Friday 22:00 to Saturday 04:00. A local start time that does not exist (the hour skipped when
// DST begins) opens the window when the clocks have jumped, shifted by the gap, like
// java.time/Temporal do; an ambiguous one (DST ends) opens at its first occurrence.

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface MaintenanceWindow {
  /** Days the window opens on (local to `timezone`). */
  days: Weekday[];
  /** Local opening time "HH:MM" (or "HH:MM:SS"). */
  start: string;
  /** Local closing time; earlier than `start` means the next day; "24:00" is midnight. */
  end: string;
  /** IANA zone name, e.g. Europe/Berlin. */
  timezone: string;
}

/** The window open at `now`, or the next one to open. Epoch milliseconds. */
export interface WindowOpening {
  opensAt: number;
  closesAt: number;
}

const DAY_MS = 86_400_000;

/** Seconds since local midnight for "HH:MM" / "HH:MM:SS" (24:00 allowed), or null. */
export function secondOfDay(text: string): number | null {
  const m = /^([01]\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?$/.exec(text);
  if (!m) return null;
  const s = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0);
  return s <= DAY_MS / 1000 ? s : null;
}

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

interface LocalDateTime {
  /** The local wall clock read as if it were UTC (epoch ms, whole seconds). */
  wall: number;
  weekday: number;
}

function local(epochMs: number, tz: string): LocalDateTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(tz).formatToParts(new Date(epochMs))) parts[p.type] = p.value;
  const n = (k: string) => Number(parts[k]);
  return {
    wall: Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')),
    weekday: WEEKDAYS.indexOf(parts.weekday!.toLowerCase() as Weekday),
  };
}

/** Zone offset at an instant, ms (wall clock − UTC). */
const offsetAt = (epochMs: number, tz: string): number => local(epochMs, tz).wall - Math.floor(epochMs / 1000) * 1000;

/** The instant a local wall-clock time (as a UTC-read epoch) happens in `tz`; see the header for gaps and overlaps. */
export function wallToEpoch(wall: number, tz: string): number {
  // The offsets a day either side cover both sides of any DST change on that day.
  const before = offsetAt(wall - DAY_MS, tz);
  const after = offsetAt(wall + DAY_MS, tz);
  const valid = [wall - before, wall - after].filter((t) => local(t, tz).wall === wall);
  return valid.length ? Math.min(...valid) : wall - before;
}

/** The window open at `now` (opensAt ≤ now) or the next one to open. */
export function nextWindow(now: number, w: MaintenanceWindow): WindowOpening {
  const start = secondOfDay(w.start);
  const end = secondOfDay(w.end);
  if (start === null || end === null || start === end) throw new Error(`invalid window ${w.start}–${w.end}`);
  const here = local(now, w.timezone);
  const today = here.wall - (here.wall % DAY_MS);
  // From yesterday (a window crossing midnight may still be open) up to a week ahead.
  for (let k = -1; k <= 8; k++) {
    if (!w.days.includes(WEEKDAYS[(here.weekday + k + 7) % 7]!)) continue;
    const day = today + k * DAY_MS;
    const opensAt = wallToEpoch(day + start * 1000, w.timezone);
    const closesAt = wallToEpoch(day + (end > start ? 0 : DAY_MS) + end * 1000, w.timezone);
    if (closesAt > now) return { opensAt, closesAt };
  }
  throw new Error('a window with at least one day always opens within a week');
}

export const isWindowOpen = (now: number, w: MaintenanceWindow): boolean => nextWindow(now, w).opensAt <= now;
