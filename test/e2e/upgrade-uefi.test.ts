// UEFI (OVMF, GPT, ESP with GRUB on the removable path): upgrade 12 → 13, then a later
// rollbackHost back to slot A (Debian 12) with the data partition intact (scenarios 2 and 3).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finalStatus, hostSlot, onVm, plainReboot, setupLab, start, type LabEnv } from '../helpers/lab-env.js';

describe('UEFI lab host: upgrade and later rollback', () => {
  let lab: LabEnv;
  beforeAll(async () => {
    lab = await setupLab('uefi');
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('upgrades 12 → 13 and commits on slot B', async () => {
    const vm = lab.vm;
    expect((await onVm(vm, '[ -d /sys/firmware/efi ] && echo uefi')).trim()).toBe('uefi');
    await onVm(vm, 'head -c 1M /dev/urandom > /srv/data/payload && sha256sum /srv/data/payload | cut -d" " -f1 > /srv/data/payload.sum');
    const hostKey = (await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim();
    const s = await finalStatus(await start(lab, 'upgradeHost', { profile: lab.profile(), autoApprove: true }));
    expect(s.state, s.reason).toBe('committed');
    expect(await hostSlot(vm)).toBe('b');
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    expect((await onVm(vm, '[ -d /sys/firmware/efi ] && findmnt -n -o TARGET /boot/efi')).trim()).toBe('/boot/efi');
    expect((await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim()).toBe(hostKey);
    expect(await onVm(vm, 'grub-editenv list')).toContain('saved_entry=ab-upgrade-slot-b');
    // A plain reboot stays on B: the ESP's GRUB now belongs to slot B.
    expect(await plainReboot(vm)).toBe('b');
  });

  it('a later rollbackHost returns to slot A (Debian 12) with the data intact', async () => {
    const vm = lab.vm;
    const sum = (await onVm(vm, 'cat /srv/data/payload.sum')).trim();
    const s = await finalStatus(await start(lab, 'rollbackHost', { profile: lab.profile(), autoApprove: true }));
    expect(s.state, s.reason).toBe('committed');
    expect(await hostSlot(vm)).toBe('a');
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^12/);
    expect((await onVm(vm, 'sha256sum /srv/data/payload | cut -d" " -f1')).trim()).toBe(sum);
    expect(await onVm(vm, 'grub-editenv list')).toContain('saved_entry=ab-upgrade-slot-a');
    expect(await plainReboot(vm)).toBe('a');
  });
});
