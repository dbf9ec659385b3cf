// The other release source: the host debootstraps Debian 13 itself from the mirror (the lab VM
// reaches deb.debian.org through QEMU user networking). About 15 minutes under TCG; needs the
// mirror. Full scope only (AB_UPGRADE_E2E=full).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullE2e } from '../helpers/e2e-scope.js';
import { finalStatus, hostSlot, onVm, plainReboot, setupLab, start, type LabEnv } from '../helpers/lab-env.js';

describe.runIf(fullE2e)('BIOS lab host: debootstrap release mode', () => {
  let lab: LabEnv;
  beforeAll(async () => {
    lab = await setupLab('bios');
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('debootstraps trixie on the host, without installing anything on the active slot, and commits', async () => {
    const vm = lab.vm;
    expect((await onVm(vm, 'command -v debootstrap || echo none')).trim()).toBe('none');
    const dpkgBefore = await onVm(vm, 'sha256sum /var/lib/dpkg/status');
    const profile = lab.profile({
      release: { source: 'debootstrap', suite: 'trixie', mirror: 'http://deb.debian.org/debian' },
      kernelArgs: 'console=ttyS0,115200 net.ifnames=0',
    });
    const s = await finalStatus(await start(lab, 'upgradeHost', { profile, autoApprove: true }));
    expect(s.state, s.reason).toBe('committed');
    expect(await hostSlot(vm)).toBe('b');
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    // Slot A: the same dpkg database (nothing installed there), no debootstrap left behind.
    const onA = await onVm(vm, 'mkdir -p /mnt/a && mount -o ro LABEL=ab-slot-a /mnt/a && { sha256sum /mnt/a/var/lib/dpkg/status; ls /mnt/a/usr/sbin/debootstrap 2>&1 || true; }; umount /mnt/a');
    expect(onA.split(' ')[0]).toBe(dpkgBefore.split(' ')[0]);
    expect(onA).toMatch(/cannot access '\/mnt\/a\/usr\/sbin\/debootstrap'/);
    // The new slot: no work directory (apt lists, the fetched debootstrap) left in its root.
    expect((await onVm(vm, 'ls -A / | grep -c ab-upgrade-debootstrap || true')).trim()).toBe('0');
    // The commit holds across a plain reboot.
    expect(await plainReboot(vm)).toBe('b');
  });
});
