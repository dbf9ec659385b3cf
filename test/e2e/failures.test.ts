// When the new slot fails, the host ends on the old slot (Debian 12, slot A), and the workflow
// says why — on a real BIOS VM, one scenario after the other:
//  - health checks fail on the new slot → rollback over SSH (no reset) (full scope only);
//  - the new slot never comes back (its initramfs hangs) → deadline → QMP reset → slot A;
//  - kexec (full scope only): the new slot comes up without firmware (QEMU never restarted), GRUB's default still
//     on A; a reset before commit lands on A and the runbook rolls back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullE2e } from '../helpers/e2e-scope.js';
import { finalStatus, grubFiles, hostSlot, onVm, setupLab, slotManifest, start, waitForState, type LabEnv } from '../helpers/lab-env.js';

describe('BIOS lab host: failed upgrades return to slot A', () => {
  let lab: LabEnv;
  beforeAll(async () => {
    lab = await setupLab('bios');
  });
  afterAll(async () => {
    await lab?.close();
  });

  /** Slot A before an attempt: its GRUB files and its whole system, to compare after the rollback. */
  async function slotABefore() {
    expect(await hostSlot(lab.vm)).toBe('a');
    return { grub: await grubFiles(lab.vm), manifest: await slotManifest(lab.vm, '/') };
  }

  /**
   * Back on slot A as if nothing had happened: Debian 12, GRUB's files byte for byte as before
   * (so the next boot is the one from before, without rebooting to see it), and not one other
   * file of the slot's system changed.
   */
  async function expectOnOldSlot(before: Awaited<ReturnType<typeof slotABefore>>) {
    expect(await hostSlot(lab.vm)).toBe('a');
    expect(await onVm(lab.vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^12/);
    expect(await grubFiles(lab.vm)).toEqual(before.grub);
    expect(await onVm(lab.vm, 'ls -d /boot/grub/ab-upgrade-backup-* 2>/dev/null || true')).toBe('');
    expect(await slotManifest(lab.vm, '/')).toBe(before.manifest);
  }

  it.runIf(fullE2e)('health checks fail on the new slot: rolled back over SSH', async () => {
    const before = await slotABefore();
    const restarts = lab.vm.restarts;
    const profile = lab.profile({
      health: { commands: [{ name: 'still bookworm', run: 'grep -q bookworm /etc/os-release', timeout: '10s' }], units: [], tcpPorts: [] },
      timings: { approvalTimeout: '30m', comebackDeadline: '5m', pollInterval: '2s', healthTimeout: '20s' },
    });
    const s = await finalStatus(await start(lab, 'upgradeHost', { profile, autoApprove: true }));
    expect(s.state).toBe('rolled-back');
    expect(s.reason).toMatch(/health checks failed on slot b/);
    const phases = s.timeline.map((p) => p.phase);
    expect(phases).toContain('rollback.rebootToSlot');
    expect(phases).not.toContain('rollback.powerReset');
    // Two reboots (trial, back), both real resets of the VM.
    expect(lab.vm.restarts - restarts).toBe(2);
    await expectOnOldSlot(before);
  });

  it('the new slot never comes back: comeback deadline, QMP reset, back on slot A', async () => {
    const before = await slotABefore();
    const profile = lab.profile({
      timings: { approvalTimeout: '30m', comebackDeadline: '150s', pollInterval: '2s', healthTimeout: '2m' },
    }, lab.release.broken);
    const s = await finalStatus(await start(lab, 'upgradeHost', { profile, autoApprove: true }));
    expect(s.state).toBe('rolled-back');
    expect(s.reason).toMatch(/did not come back/);
    expect(s.timeline.map((p) => p.phase)).toContain('rollback.powerReset');
    await expectOnOldSlot(before);
  });

  it.runIf(fullE2e)('kexec: comes up on B without firmware, GRUB default untouched; a reset before commit lands on A', async () => {
    const before = await slotABefore();
    const restarts = lab.vm.restarts;
    const defaultBefore = (await onVm(lab.vm, 'grub-editenv list')).trim();
    const profile = lab.profile({
      reboot: 'kexec',
      // Holds the upgrade in its health phase until the test has looked (and then reset it).
      health: { commands: [{ name: 'on slot b and released', run: 'grep -q ab.slot=b /proc/cmdline && test -f /srv/data/ab-go', timeout: '10s' }], units: [], tcpPorts: [] },
      timings: { approvalTimeout: '30m', comebackDeadline: '5m', pollInterval: '2s', healthTimeout: '90s' },
    });
    const handle = await start(lab, 'upgradeHost', { profile, autoApprove: true });
    await waitForState(handle, (s) => s.phase === 'checkHealth', 20 * 60_000);
    expect(await hostSlot(lab.vm)).toBe('b');
    expect(lab.vm.restarts).toBe(restarts); // kexec: QEMU was never reset, so no firmware ran
    expect(await onVm(lab.vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    await onVm(lab.vm, 'mkdir -p /mnt/a && mount -o ro LABEL=ab-slot-a /mnt/a');
    const envOnA = (await onVm(lab.vm, 'grub-editenv /mnt/a/boot/grub/grubenv list; umount /mnt/a')).trim();
    expect(envOnA).toBe(defaultBefore); // no next_entry, same saved default

    const bootB = (await onVm(lab.vm, 'cat /proc/sys/kernel/random/boot_id')).trim();
    const { QmpPowerDriver } = await import('../../activities/power.js');
    await new QmpPowerDriver(lab.vm.qmpSocket).reset();
    await lab.vm.waitForSsh(300_000, { notBootId: bootB });
    expect(await hostSlot(lab.vm)).toBe('a');

    const s = await finalStatus(handle);
    expect(s.state).toBe('rolled-back');
    expect(s.reason).toMatch(/health/);
    await expectOnOldSlot(before);
  });
});
