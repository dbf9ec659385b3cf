// The activity boundary (activities/index.ts) validates the profile it is handed: a workflow
// started by anyone who reaches the task queue must not get commands run, files read or URLs
// called through an activity.
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import type { PowerDriver } from '../../activities/power.js';
import { FailureTypes } from '../../lib/contract.js';
import { parseProfile, type Profile } from '../../lib/profile.js';

const profile = (): Profile =>
  parseProfile({
    host: '192.0.2.10',
    auth: { identityFile: '/nonexistent/id_ed25519' },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie' },
    power: { driver: 'redfish', url: 'https://bmc.example.net', user: 'root', passwordFile: '/etc/ab-upgrade/bmc.pw' },
  });

function withDriverSpy() {
  const asked: Profile['power'][] = [];
  let resets = 0;
  const driver: PowerDriver = {
    reset: async () => void resets++,
    powerOff: async () => undefined,
    powerOn: async () => undefined,
    status: async () => 'on',
  };
  const acts = createActivities({
    powerDriverFor: (power) => {
      asked.push(power);
      return driver;
    },
  });
  return { acts, asked, resets: () => resets };
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApplicationFailure);
    return e as ApplicationFailure;
  }
  throw new Error('expected the activity to fail');
}

describe('createActivities validates the profile argument', () => {
  it('a valid profile reaches the activity (the power driver is asked for its power section)', async () => {
    const { acts, asked, resets } = withDriverSpy();
    await acts.powerReset(profile());
    expect(asked).toEqual([profile().power]);
    expect(resets()).toBe(1);
  });

  it.each([
    ['a private key as the Redfish password file, sent over http', { power: { ...profile().power, url: 'http://attacker.example', passwordFile: '/root/.ssh/id_ed25519' } }, /power\.url: must be https:\/\//],
    ['a relative password file', { power: { ...profile().power, passwordFile: 'bmc.pw' } }, /power\.passwordFile: must be an absolute path/],
    ['an unknown key', { power: { ...profile().power, adress: 'x' } }, /power: unrecognized key "adress"/],
    ['kernelArgs with a quote', { kernelArgs: "quiet' x" }, /kernelArgs: must be plain kernel parameters/],
    ['a zero poll interval', { timings: { ...profile().timings, pollInterval: 0 } }, /timings\.pollInterval: 0 ms must be at least 100ms/],
  ])('%s: non-retryable InvalidInput naming the field, the driver never asked', async (_label, patch, message) => {
    const { acts, asked } = withDriverSpy();
    const f = await failureOf(acts.powerReset({ ...profile(), ...patch } as Profile));
    expect(f.type).toBe(FailureTypes.InvalidInput);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(message);
    expect(asked).toHaveLength(0);
  });

  it('every activity checks it first: inspectHost fails before any SSH connection is tried', async () => {
    const { acts } = withDriverSpy();
    const t0 = Date.now();
    const f = await failureOf(acts.inspectHost({ ...profile(), health: { ...profile().health, unit: ['x'] } } as Profile));
    expect(f.type).toBe(FailureTypes.InvalidInput);
    expect(f.message).toMatch(/health: unrecognized key "unit"/);
    expect(Date.now() - t0).toBeLessThan(1000);
    const g = await failureOf(acts.checkHealth(null as unknown as Profile));
    expect(g.message).toMatch(/\(profile\): must be an object/);
  });
});
