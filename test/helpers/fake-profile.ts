// Profiles for fake hosts, with test-sized timings. Apart from the workflow environment (which
// needs vitest) so that benchmarks can use them too.
import { randomUUID } from 'node:crypto';
import { parseProfile, type Profile, type ProfileInput } from '../../lib/profile.js';

export function uniqueName(prefix = 'host'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A parsed profile for a fake host with test-sized timings (override anything). */
export function fakeProfile(overrides: Partial<ProfileInput> = {}): Profile {
  return parseProfile({
    name: uniqueName('fake'),
    host: '192.0.2.10',
    auth: { identityFile: '/nonexistent/id_ed25519' },
    hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    slots: 'auto',
    data: { device: '/dev/vda4', mountPoint: '/srv' },
    release: { source: 'debootstrap', suite: 'trixie' },
    timings: { approvalTimeout: '5s', comebackDeadline: '3s', pollInterval: '100ms', healthTimeout: '5s' },
    power: { driver: 'qmp', socket: '/run/fake-qmp.sock' },
    ...overrides,
  });
}
