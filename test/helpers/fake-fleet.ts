// Many scripted fake hosts behind one set of activities, for the campaign workflow tests: each
// activity call goes to the FakeHost named by its profile argument (every activity takes the
// profile first).
import type { HostActivities } from '../../lib/contract.js';
import type { Profile, ProfileInput } from '../../lib/profile.js';
import { FakeHost, routeByProfile, type FakeHostScript } from './fake-host.js';
import { fakeProfile } from './workflow-env.js';

export class FakeFleet {
  readonly hosts = new Map<string, FakeHost>();
  readonly profiles: Profile[] = [];
  private readonly acts = new Map<string, HostActivities>();

  /** Adds a host (profile with test timings) and returns it. */
  add(script: FakeHostScript = {}, profile: Partial<ProfileInput> = {}): { profile: Profile; fake: FakeHost } {
    const p = fakeProfile(profile);
    const fake = new FakeHost(script);
    this.hosts.set(p.name, fake);
    this.acts.set(p.name, fake.activities());
    this.profiles.push(p);
    return { profile: p, fake };
  }

  /** n hosts with the same script. */
  addMany(n: number, script: FakeHostScript = {}): Profile[] {
    return Array.from({ length: n }, () => this.add(script).profile);
  }

  host(p: Profile | string): FakeHost {
    return this.hosts.get(typeof p === 'string' ? p : p.name)!;
  }

  /** When the host's first call of `name` happened (epoch ms), or undefined. */
  firstCall(p: Profile, name: keyof HostActivities): number | undefined {
    return this.host(p).calls.find((c) => c.name === name)?.at;
  }

  activities(): HostActivities {
    return routeByProfile((name) => this.acts.get(name));
  }

  dispose(): void {
    for (const f of this.hosts.values()) f.dispose();
  }
}
