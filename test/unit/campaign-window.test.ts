import { describe, expect, it } from 'vitest';
import { isWindowOpen, nextWindow, secondOfDay, wallToEpoch, type MaintenanceWindow } from '../../lib/maintenance-window.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();
const ALL = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as MaintenanceWindow['days'];
const open = (now: string, w: MaintenanceWindow) => {
  const n = nextWindow(at(now), w);
  return [iso(n.opensAt), iso(n.closesAt)];
};

describe('secondOfDay', () => {
  it('reads HH:MM and HH:MM:SS, 24:00 is the end of the day', () => {
    expect(secondOfDay('00:00')).toBe(0);
    expect(secondOfDay('22:30')).toBe(81_000);
    expect(secondOfDay('12:30:15')).toBe(45_015);
    expect(secondOfDay('24:00')).toBe(86_400);
  });
  it('refuses anything else', () => {
    for (const bad of ['24:01', '7:00', '12:60', '25:00', '12:00:60', 'noon', '']) expect(secondOfDay(bad)).toBeNull();
  });
});

describe('nextWindow', () => {
  // Europe/Berlin: CEST (UTC+2) in June.
  const friNight: MaintenanceWindow = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '22:00', end: '04:00', timezone: 'Europe/Berlin' };

  it('a window crossing midnight is open from its day into the next one', () => {
    // Friday 2025-06-13 23:00 local.
    expect(open('2025-06-13T21:00:00Z', friNight)).toEqual(['2025-06-13T20:00:00.000Z', '2025-06-14T02:00:00.000Z']);
    // Saturday 03:00 local: still Friday's window, although Saturday is not a listed day.
    expect(isWindowOpen(at('2025-06-14T01:00:00Z'), friNight)).toBe(true);
    expect(open('2025-06-14T01:00:00Z', friNight)).toEqual(['2025-06-13T20:00:00.000Z', '2025-06-14T02:00:00.000Z']);
  });

  it('outside the window: the next listed day (weekend skipped)', () => {
    // Saturday 05:00 local → Monday 22:00 local.
    expect(isWindowOpen(at('2025-06-14T03:00:00Z'), friNight)).toBe(false);
    expect(open('2025-06-14T03:00:00Z', friNight)).toEqual(['2025-06-16T20:00:00.000Z', '2025-06-17T02:00:00.000Z']);
    // Friday 21:59 local: opens in a minute, today.
    expect(open('2025-06-13T19:59:00Z', friNight)[0]).toBe('2025-06-13T20:00:00.000Z');
    // The closing instant itself is outside.
    expect(isWindowOpen(at('2025-06-14T02:00:00Z'), friNight)).toBe(false);
  });

  it('DST begins (Berlin, 2025-03-30 02:00 → 03:00): a window starting in the skipped hour opens after the jump', () => {
    const w: MaintenanceWindow = { days: ['sun'], start: '02:30', end: '05:00', timezone: 'Europe/Berlin' };
    // 02:30 does not exist: shifted by the gap to 03:30 CEST = 01:30Z; 05:00 CEST = 03:00Z.
    expect(open('2025-03-29T12:00:00Z', w)).toEqual(['2025-03-30T01:30:00.000Z', '2025-03-30T03:00:00.000Z']);
    // A 01:00–04:00 window that night lasts two real hours, not three.
    const short = { ...w, start: '01:00', end: '04:00' };
    expect(open('2025-03-29T12:00:00Z', short)).toEqual(['2025-03-30T00:00:00.000Z', '2025-03-30T02:00:00.000Z']);
  });

  it('DST ends (Berlin, 2025-10-26 03:00 → 02:00): the ambiguous hour opens at its first occurrence; the night is an hour longer', () => {
    const w: MaintenanceWindow = { days: ['sun'], start: '02:30', end: '06:00', timezone: 'Europe/Berlin' };
    expect(open('2025-10-25T12:00:00Z', w)).toEqual(['2025-10-26T00:30:00.000Z', '2025-10-26T05:00:00.000Z']);
    const night: MaintenanceWindow = { days: ['sat'], start: '22:00', end: '06:00', timezone: 'Europe/Berlin' };
    const n = nextWindow(at('2025-10-25T12:00:00Z'), night);
    expect((n.closesAt - n.opensAt) / 3_600_000).toBe(9);
  });

  it('New York: the same local 09:00 is 14:00Z before the change and 13:00Z after it', () => {
    const w: MaintenanceWindow = { days: ALL, start: '09:00', end: '17:00', timezone: 'America/New_York' };
    expect(open('2025-03-08T12:00:00Z', w)[0]).toBe('2025-03-08T14:00:00.000Z');
    expect(open('2025-03-08T23:00:00Z', w)[0]).toBe('2025-03-09T13:00:00.000Z');
  });

  it('a whole day (00:00–24:00) on the listed days; seconds resolution', () => {
    const w: MaintenanceWindow = { days: ['wed'], start: '00:00', end: '24:00', timezone: 'UTC' };
    expect(open('2025-06-10T12:00:00Z', w)).toEqual(['2025-06-11T00:00:00.000Z', '2025-06-12T00:00:00.000Z']);
    const s: MaintenanceWindow = { days: ALL, start: '10:00:05', end: '10:00:10', timezone: 'Asia/Kolkata' };
    expect(open('2025-06-10T04:30:00Z', s)).toEqual(['2025-06-10T04:30:05.000Z', '2025-06-10T04:30:10.000Z']);
  });

  it('wallToEpoch is the inverse of the zone clock outside DST changes', () => {
    expect(iso(wallToEpoch(Date.UTC(2025, 0, 15, 12, 0), 'Europe/Berlin'))).toBe('2025-01-15T11:00:00.000Z');
    expect(iso(wallToEpoch(Date.UTC(2025, 6, 15, 12, 0), 'Australia/Sydney'))).toBe('2025-07-15T02:00:00.000Z');
  });
});
