// The pre-flight gather against a real sshd on this machine: where health units come from, by
// systemd or (no systemd running) by the unit search paths, and dpkg.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatherPreflight } from '../../activities/preflight.js';
import { sshdProfile, sshdSession } from '../helpers/sshd.js';

const T = 60_000;
const DEBIAN_WITH_SSH = existsSync('/usr/bin/dpkg-query') && existsSync('/lib/systemd/system/ssh.service') && existsSync('/lib/systemd/system/getty@.service');
const session = sshdSession('ab-upgrade-preflight-');

describe.skipIf(!DEBIAN_WITH_SSH)('gatherPreflight', () => {
  it('finds each health unit file and its package, the local units, fstab and dependencies', { timeout: T }, async () => {
    const dir = join(session.tmp, 'system');
    mkdirSync(dir);
    writeFileSync(join(dir, 'myapp.service'), '[Service]\nExecStart=/bin/true\n');
    const profile = sshdProfile(session.sshd, { health: { units: ['ssh.service', 'getty@tty1.service', 'ab-upgrade-no-such.service'] } });
    const g = await gatherPreflight(session.h, profile, dir);
    expect(g.units).toEqual([
      { unit: 'ssh.service', fragment: expect.stringMatching(/^(\/usr)?\/lib\/systemd\/system\/ssh\.service$/), packages: ['openssh-server'] },
      { unit: 'getty@tty1.service', fragment: expect.stringMatching(/^(\/usr)?\/lib\/systemd\/system\/getty@\.service$/), packages: ['systemd'] },
      { unit: 'ab-upgrade-no-such.service', fragment: '', packages: [] },
    ]);
    expect(g.localUnits).toEqual({ carry: [join(dir, 'myapp.service')], skipped: [] });
    expect(g.depends.get('openssh-server')).toEqual(expect.arrayContaining(['openssh-client']));
    expect(typeof g.fstab).toBe('string');
  });
});
