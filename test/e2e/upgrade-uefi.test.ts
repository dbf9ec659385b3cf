// UEFI (OVMF, GPT, ESP with GRUB on the removable path) on a host laid out by its operator: its
// own partition and filesystem labels (the profile names the slots and data by LABEL=), swap, a
// bind mount from the data partition and its own systemd unit with a drop-in, health-checked.
// plan's pre-flight report finds nothing that would stop it; the upgrade 12 → 13 commits (the
// signed tarball pulled by the host over plain TCP: release.pull), then a later rollbackHost
// returns to slot A (Debian 12) with the data intact.
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planHost } from '../../client/cli.js';
import { pulledByLabVm } from '../../lab/session.js';
import { finalStatus, historyText, hostSlot, labSecrets, onVm, plainReboot, setupLab, slotManifest, start, type LabEnv } from '../helpers/lab-env.js';

// What the runbook may change on slot A while it upgrades to B: the GRUB files it manages there.
const MANAGED_ON_A = /^boot\/grub\/(grubenv|custom\.cfg|ab-upgrade-backup-)/;

/** What the operator set up, as the host shows it: it must survive every transition. */
async function operatorSetup(lab: LabEnv) {
  const vm = lab.vm;
  return {
    labels: (await onVm(vm, 'for p in 1 2 3 5; do blkid -s LABEL -o value /dev/vda$p; done')).trim().split('\n'),
    swap: (await onVm(vm, 'swapon --show=NAME --noheadings')).trim(),
    www: (await onVm(vm, 'cat /var/www/index.html')).trim(),
    app: (await onVm(vm, 'systemctl is-active lab-app.service; systemctl show -p Environment --value lab-app.service')).trim(),
  };
}

describe('UEFI host laid out by its operator: upgrade and later rollback', () => {
  let lab: LabEnv;
  let before: Awaited<ReturnType<typeof operatorSetup>>;
  beforeAll(async () => {
    lab = await setupLab('uefi');
    before = await operatorSetup(lab);
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('starts with the operator\'s labels, swap, bind mount and unit', () => {
    expect(before).toEqual({
      labels: ['sys-blue', 'sys-green', 'srv-data', 'swap0'],
      swap: '/dev/vda5',
      www: 'lab-host www',
      app: 'active\nLAB_APP_GREETING=hello-from-the-drop-in',
    });
  });

  it('plan: no inhibitor, the release signature verified; the local unit and its drop-in will be carried, swap and bind mount kept', async () => {
    const plan = await planHost(lab.profile());
    expect(plan.ok, plan.text).toBe(true);
    expect(plan.text).toMatch(/pre-flight: 0 inhibitors/);
    // the lab release is signed with the lab key: plan verifies it as the install will
    expect(plan.text).toMatch(/^ {5}signature: verified with minisign, key [0-9A-F]+ \(trusted comment: ab-upgrade lab release trixie\.tar\.zst, recipe /m);
    expect(plan.text).toContain('/etc/systemd/system/lab-app.service');
    expect(plan.text).toContain('/etc/systemd/system/lab-app.service.d');
    expect(plan.text).toMatch(/mkfs\.ext4 -L sys-green/);
  });

  it('upgrades 12 → 13 and commits on slot B', async () => {
    const vm = lab.vm;
    expect((await onVm(vm, '[ -d /sys/firmware/efi ] && echo uefi')).trim()).toBe('uefi');
    await onVm(vm, 'head -c 1M /dev/urandom > /srv/data/payload && sha256sum /srv/data/payload | cut -d" " -f1 > /srv/data/payload.sum');
    const hostKey = (await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim();
    // Slot A before anything of ours ran.
    const manifestA = await slotManifest(vm, '/', MANAGED_ON_A);
    const handle = await start(lab, 'upgradeHost', { profile: pulledByLabVm(lab.profile()), autoApprove: true });
    const s = await finalStatus(handle);
    expect(s.state, s.reason).toBe('committed');
    expect(await hostSlot(vm)).toBe('b');
    expect(s.install).toMatchObject({ via: 'pull', bytes: statSync(lab.release.good.path).size });
    // The history holds the carry report of the host's private keys: never a line or a digest of them.
    const history = await historyText(handle);
    expect(history).toContain('/etc/ssh/ssh_host_ed25519_key');
    for (const secret of await labSecrets(lab)) expect(history).not.toContain(secret);
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    expect((await onVm(vm, '[ -d /sys/firmware/efi ] && findmnt -n -o TARGET /boot/efi')).trim()).toBe('/boot/efi');
    expect((await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim()).toBe(hostKey);
    expect(await onVm(vm, 'grub-editenv list')).toContain('saved_entry=ab-upgrade-slot-b');
    // The operator's unit is on slot B (carried, no package owns it), enabled, healthy; the
    // spare kept its label, so the profile's LABEL= references still resolve.
    expect(s.carry?.localUnits).toEqual(expect.arrayContaining(['/etc/systemd/system/lab-app.service']));
    expect(s.health?.checks.find((c) => c.name.includes('lab-app.service'))?.ok).toBe(true);
    expect(await operatorSetup(lab)).toEqual(before);
    // Slot A: unchanged but for the GRUB files the runbook manages.
    await onVm(vm, 'mkdir -p /mnt/a && mount -o ro LABEL=sys-blue /mnt/a');
    const manifestAfter = await slotManifest(vm, '/mnt/a', MANAGED_ON_A);
    await onVm(vm, 'umount /mnt/a');
    expect(manifestAfter).toBe(manifestA);
    // A plain reboot stays on B: the ESP's GRUB now belongs to slot B.
    expect(await plainReboot(vm)).toBe('b');
    expect(await operatorSetup(lab)).toEqual(before);
  });

  it('a later rollbackHost returns to slot A (Debian 12) with the data and the operator\'s setup intact', async () => {
    const vm = lab.vm;
    const sum = (await onVm(vm, 'cat /srv/data/payload.sum')).trim();
    const s = await finalStatus(await start(lab, 'rollbackHost', { profile: lab.profile(), autoApprove: true }));
    expect(s.state, s.reason).toBe('committed');
    expect(await hostSlot(vm)).toBe('a');
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^12/);
    expect((await onVm(vm, 'sha256sum /srv/data/payload | cut -d" " -f1')).trim()).toBe(sum);
    expect(await onVm(vm, 'grub-editenv list')).toContain('saved_entry=ab-upgrade-slot-a');
    expect(await operatorSetup(lab)).toEqual(before);
    expect(await plainReboot(vm)).toBe('a');
  });
});
