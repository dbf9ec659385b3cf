// Fixtures for unit tests of host-facing code on scripted hosts: a minimal valid profile and the
// facts of a lab-like host (slot a on vda1 running, b on vda2, data on vda3).
import type { HostFacts } from '../../lib/contract.js';
import { parseProfile, type Profile } from '../../lib/profile.js';

/** The smallest valid profile (debootstrap release, agent auth), with `over` merged on top. */
export function minimalProfile(over: Record<string, unknown> = {}): Profile {
  return parseProfile({
    host: 'web-1',
    auth: { agent: true },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie' },
    ...over,
  });
}

/** Inspected facts of a host running slot a, with `over` merged on top. */
export function labFacts(over: Record<string, unknown> = {}): HostFacts {
  return {
    active: { name: 'a', device: '/dev/vda1', partuuid: '6f4c9d2e-01', uuid: '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b', label: 'ab-slot-a', fstype: 'ext4', sizeBytes: 1, usedBytes: 1 },
    spare: { name: 'b', device: '/dev/vda2', partuuid: '6f4c9d2e-02', uuid: '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a', label: 'ab-slot-b', fstype: 'ext4', sizeBytes: 1, usedBytes: null },
    data: { device: '/dev/vda3', uuid: '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', fstype: 'ext4', mountPoint: '/srv/data' },
    ...over,
  } as unknown as HostFacts;
}
