// Finding the operator's own units, against a real sshd and this machine's dpkg, with a temporary
// directory standing in for /etc/systemd/system.
import { existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENABLE_SERVICES, listLocalUnits } from '../../activities/carry.js';
import { sh } from '../../activities/host-io.js';
import { sshdSession } from '../helpers/sshd.js';

const T = 60_000;
const HAS_DPKG = existsSync('/usr/bin/dpkg-query') && existsSync('/etc/debian_version');
const session = sshdSession('ab-upgrade-units-');

describe.skipIf(!HAS_DPKG)('listLocalUnits', () => {
  it('finds unit files, drop-ins, masks and linked units no package owns; not enablement links or aliases', { timeout: T }, async () => {
    const dir = join(session.tmp, 'system');
    const data = join(session.tmp, 'data');
    const opt = join(session.tmp, 'opt');
    for (const d of [dir, data, opt, `${dir}/myapp.service.d`, `${dir}/nginx.service.d`, `${dir}/multi-user.target.wants`, `${dir}/timers.target.wants`])
      mkdirSync(d, { recursive: true });
    const unit = '[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n';
    for (const f of ['myapp.service', 'backup.service', 'backup.timer', 'worker@.service', 'app.socket', 'watch.path', 'README'])
      writeFileSync(join(dir, f), unit);
    writeFileSync(join(dir, 'myapp.service.d/override.conf'), '[Service]\nRestart=always\n');
    writeFileSync(join(dir, 'nginx.service.d/limits.conf'), '[Service]\nLimitNOFILE=65536\n');
    symlinkSync(join(dir, 'myapp.service'), join(dir, 'multi-user.target.wants/myapp.service'));
    symlinkSync(join(dir, 'worker@.service'), join(dir, 'multi-user.target.wants/worker@1.service'));
    symlinkSync(join(dir, 'backup.timer'), join(dir, 'timers.target.wants/backup.timer'));
    symlinkSync(join(dir, 'myapp.service'), join(dir, 'myapp-alias.service'));
    symlinkSync('/lib/systemd/system/ssh.service', join(dir, 'sshd.service'));
    symlinkSync('/dev/null', join(dir, 'cups.service'));
    writeFileSync(join(opt, 'linked.service'), unit);
    symlinkSync(join(opt, 'linked.service'), join(dir, 'linked.service'));
    writeFileSync(join(data, 'ondata.service'), unit);
    symlinkSync(join(data, 'ondata.service'), join(dir, 'ondata.service'));
    symlinkSync('/etc/debian_version', join(dir, 'pkgfile.service')); // a file dpkg owns
    symlinkSync(join(session.tmp, 'nowhere.service'), join(dir, 'gone.service'));

    const r = await listLocalUnits(session.h, data, dir);
    expect([...r.carry].sort()).toEqual(
      [
        'app.socket',
        'backup.service',
        'backup.timer',
        'cups.service',
        'linked.service',
        'myapp.service',
        'myapp.service.d/override.conf',
        'nginx.service.d/limits.conf',
        'ondata.service',
        'pkgfile.service',
        'watch.path',
        'worker@.service',
      ]
        .map((f) => join(dir, f))
        .concat(join(opt, 'linked.service'))
        .sort(),
    );
    expect(r.skipped).toEqual([{ path: join(dir, 'gone.service'), reason: `linked unit whose target ${join(session.tmp, 'nowhere.service')} is missing` }]);
  });

  it('an absent directory has no local units', { timeout: T }, async () => {
    expect(await listLocalUnits(session.h, '/srv', join(session.tmp, 'absent'))).toEqual({ carry: [], skipped: [] });
  });

  it('the enable step enables an enabled instance of a template carried to the new slot', { timeout: T }, async () => {
    const old = join(session.tmp, 'old-system');
    mkdirSync(join(old, 'multi-user.target.wants'), { recursive: true });
    symlinkSync(join(old, 'queue@.service'), join(old, 'multi-user.target.wants/queue@mail.service'));
    const root = join(session.tmp, 'new-root');
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'etc/systemd/system/queue@.service'), '[Service]\nExecStart=/bin/true %i\n[Install]\nWantedBy=multi-user.target\n');
    const out = await sh(session.h, ENABLE_SERVICES, [root, old]);
    expect(out.split('\n')).toContain('E queue@mail.service');
    expect(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/queue@mail.service')).isSymbolicLink()).toBe(true);
  });

  // A systemctl that times out on D-Bus, as on a loaded host, unless it works offline (--root).
  function systemctlWithoutBus(offline: 'works' | 'fails') {
    const bin = join(session.tmp, `bin-${offline}`);
    mkdirSync(bin, { recursive: true });
    const real = existsSync('/usr/bin/systemctl') ? '/usr/bin/systemctl' : '/bin/systemctl';
    const offlineCase = offline === 'works' ? `exec ${real} "$@"` : 'echo "Failed to read unit files" >&2; exit 1';
    writeFileSync(
      join(bin, 'systemctl'),
      `#!/bin/sh
case " $* " in *" --root=/ "*) ${offlineCase} ;; *" --root="*) exec ${real} "$@" ;; esac
echo "Failed to connect to bus: Connection timed out" >&2
exit 1
`,
      { mode: 0o755 },
    );
    return `PATH=${bin}:$PATH; export PATH\n${ENABLE_SERVICES}`;
  }

  it('reads the running slot\'s enabled units offline: a systemd that does not answer still gets its services enabled on the new slot', { timeout: T }, async () => {
    const root = join(session.tmp, 'new-root-bus');
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    writeFileSync(join(root, 'etc/systemd/system/ssh.service'), '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n');
    // openssh-server's unit is enabled on this machine (scripts/setup.sh installs it).
    const out = await sh(session.h, systemctlWithoutBus('works'), [root, join(session.tmp, 'absent')]);
    expect(out.split('\n')).toContain('E ssh.service');
    expect(lstatSync(join(root, 'etc/systemd/system/multi-user.target.wants/ssh.service')).isSymbolicLink()).toBe(true);
  });

  it('a listing that fails fails the step (to be retried), instead of enabling nothing', { timeout: T }, async () => {
    const root = join(session.tmp, 'new-root-fail');
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    await expect(sh(session.h, systemctlWithoutBus('fails'), [root, join(session.tmp, 'absent')])).rejects.toThrow(/listing the running slot's enabled units failed/);
  });
});
