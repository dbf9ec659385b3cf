// The product's claim on a real Debian 12 VM with BIOS/MBR and GRUB (grub-pc), installing the
// signed ext4-image release (the UEFI file installs the tarball):
//  - upgrade 12 → 13 with an approval wait, an edit during the wait carried by the final sync,
//    the host's identity, users, a carried file, an enabled service and the data partition kept,
//    slot A untouched but for the GRUB files we manage;  (e2e scenarios 1 and 7)
//  - the round trip: B active, old slot A reused as the spare, committed on A (full scope only);
//  - a later rollbackHost back to the previous slot;  (scenario 3, ownership after rollback)
// A plain reboot after every transition proves GRUB's ownership moved correctly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureReleaseImage, type LabArtifact } from '../../lab/session.js';
import { approveUpdate } from '../../lib/workflow-api.js';
import { fullE2e } from '../helpers/e2e-scope.js';
import { finalStatus, hostSlot, onVm, plainReboot, setupLab, slotManifest, start, waitForState, type LabEnv } from '../helpers/lab-env.js';

const CARRIED = '/etc/ab-e2e.conf';
const DEMO_UNIT = '/etc/systemd/system/ab-demo.service';
// Files of slot A that must not change: all of its system, minus what we manage in GRUB and the
// carried file the test itself edits on slot A while the approval waits.
const MANAGED_ON_A = /^(boot\/grub\/(grubenv|custom\.cfg|ab-upgrade-backup-)|etc\/ab-e2e\.conf$)/;

describe('BIOS lab host: upgrade, round trip, rollback', () => {
  let lab: LabEnv;
  // sha256 of a file on the data partition, written before the first upgrade.
  let payloadSum = '';
  let release: LabArtifact;
  beforeAll(async () => {
    // Built (or found in the cache) before the VM starts: it takes the machine's CPU.
    release = await ensureReleaseImage();
    lab = await setupLab('bios');
  });
  afterAll(async () => {
    await lab?.close();
  });

  const profile = (overrides = {}) =>
    lab.profile(
      {
        carry: { defaults: true, files: [CARRIED, DEMO_UNIT], exclude: [] },
        health: { units: ['ssh.service', 'ab-demo.service'], tcpPorts: [22] },
        ...overrides,
      },
      release,
    );

  const plainRebootStaysOn = async (slot: string) => expect(await plainReboot(lab.vm)).toBe(slot);

  it('upgrades 12 → 13 after approval, carrying identity, users, config, services and data', async () => {
    const vm = lab.vm;
    // State on slot A that must survive.
    await onVm(vm, `useradd -m -s /bin/bash alice && echo 'alice:s3cret-Pass' | chpasswd`);
    const aliceHash = (await onVm(vm, "getent shadow alice | cut -d: -f2")).trim();
    await onVm(vm, `echo 'setting=before' > ${CARRIED}`);
    await onVm(vm, `printf '[Unit]\\nDescription=ab demo\\n[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' > ${DEMO_UNIT} && systemctl daemon-reload && systemctl enable --now ab-demo.service`);
    payloadSum = (await onVm(vm, 'head -c 1M /dev/urandom > /srv/data/payload && sha256sum /srv/data/payload | cut -d" " -f1')).trim();
    expect(payloadSum).toMatch(/^[0-9a-f]{64}$/);
    const hostKeyBefore = (await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim();
    const machineId = (await onVm(vm, 'cat /etc/machine-id')).trim();
    expect(await hostSlot(vm)).toBe('a');
    // Slot A as it is before the upgrade starts: nothing of ours has run yet.
    const manifestA = await slotManifest(vm, '/', MANAGED_ON_A);

    const p = profile();
    expect(p.release).toMatchObject({ source: 'image', format: 'ext4-image' });
    const handle = await start(lab, 'upgradeHost', { profile: p, requestedBy: 'e2e' });
    const waiting = await waitForState(handle, (s) => s.state === 'awaiting-approval', 15 * 60_000);
    expect(waiting.carry?.carried).toContain(CARRIED);
    // The image was installed after its signature (the lab key) and the host's digest checked out.
    expect(waiting.install?.image).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), keyId: expect.stringMatching(/^[0-9A-F]+$/) });
    // Edits made while the approval waits must reach the new slot (final sync).
    await onVm(vm, `echo 'setting=edited-while-waiting' > ${CARRIED}`);
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'e2e', reason: 'scenario 1+7' }] });

    const s = await finalStatus(handle);
    expect(s.state, s.reason).toBe('committed');
    expect(s.carry?.resynced).toContain(CARRIED);
    expect(s.downtime?.downtimeMs).toBeGreaterThan(0);

    // Everything below is read off the host itself.
    expect(await hostSlot(vm)).toBe('b');
    expect(await onVm(vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    expect((await onVm(vm, 'cat /proc/cmdline'))).toContain('ab.slot=b');
    expect((await onVm(vm, 'hostname')).trim()).toBe('lab-host');
    expect((await onVm(vm, 'cat /etc/machine-id')).trim()).toBe(machineId);
    expect((await onVm(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).trim()).toBe(hostKeyBefore);
    expect((await onVm(vm, 'getent shadow alice | cut -d: -f2')).trim()).toBe(aliceHash);
    expect((await onVm(vm, `cat ${CARRIED}`)).trim()).toBe('setting=edited-while-waiting');
    expect((await onVm(vm, 'systemctl is-enabled ab-demo.service; systemctl is-active ab-demo.service')).split('\n')).toEqual(['enabled', 'active', '']);
    expect((await onVm(vm, 'sha256sum /srv/data/payload | cut -d" " -f1')).trim()).toBe(payloadSum);
    expect((await onVm(vm, 'grub-editenv list')).trim()).toContain('saved_entry=ab-upgrade-slot-b');
    // The image (built shrunk) fills slot B again and carries B's label; / is mounted by that
    // filesystem's UUID as the carried fstab says.
    const [fsBlocks, blockSize, devBytes] = (
      await onVm(vm, 'd=$(findmnt -no SOURCE /); tune2fs -l "$d" | sed -n "s/^Block count: *//p; s/^Block size: *//p"; blockdev --getsize64 "$d"')
    ).trim().split('\n').map(Number);
    expect(fsBlocks! * blockSize!).toBeGreaterThan(devBytes! * 0.98);
    expect((await onVm(vm, 'findmnt -no LABEL /')).trim()).toBe('ab-slot-b');
    expect((await onVm(vm, `awk '$2 == "/" {print $1}' /etc/fstab`)).trim()).toBe(`UUID=${(await onVm(vm, 'findmnt -no UUID /')).trim()}`);

    // Slot A: unchanged but for the GRUB files the runbook manages.
    await onVm(vm, 'mkdir -p /mnt/a && mount -o ro LABEL=ab-slot-a /mnt/a');
    const manifestAfter = await slotManifest(vm, '/mnt/a', MANAGED_ON_A);
    await onVm(vm, 'umount /mnt/a');
    expect(manifestAfter).toBe(manifestA);

    await plainRebootStaysOn('b');
  });

  it.runIf(fullE2e)('round trip: with B active, the old slot A is the spare and the upgrade commits on A', async () => {
    const handle = await start(lab, 'upgradeHost', { profile: profile(), autoApprove: true, requestedBy: 'e2e' });
    const s = await finalStatus(handle);
    expect(s.state, s.reason).toBe('committed');
    expect(s.fromSlot).toBe('b');
    expect(s.toSlot).toBe('a');
    expect(await hostSlot(lab.vm)).toBe('a');
    expect(await onVm(lab.vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    expect((await onVm(lab.vm, 'grub-editenv list'))).toContain('saved_entry=ab-upgrade-slot-a');
    expect((await onVm(lab.vm, 'cat /etc/ab-e2e.conf')).trim()).toBe('setting=edited-while-waiting');
    expect((await onVm(lab.vm, 'sha256sum /srv/data/payload | cut -d" " -f1')).trim()).toBe(payloadSum);
    await plainRebootStaysOn('a');
  });

  it('a later rollbackHost returns to the previous slot, which then owns the boot; carryBack brings the changes made since', async () => {
    // Changes made on the committed slot after the upgrade: an edited carried file, a new user.
    await onVm(lab.vm, `echo setting=changed-after-upgrade > ${CARRIED} && useradd -m carol && echo 'carol:An0ther-Pass' | chpasswd`);
    const carolHash = (await onVm(lab.vm, 'getent shadow carol | cut -d: -f2')).trim();
    // After the first upgrade the host is on B (and the previous slot is A); after the round
    // trip it is on A (previous B).
    const previous = (await hostSlot(lab.vm)) === 'b' ? 'a' : 'b';
    const handle = await start(lab, 'rollbackHost', { profile: profile(), autoApprove: true, requestedBy: 'e2e', carryBack: true });
    const s = await finalStatus(handle);
    expect(s.state, s.reason).toBe('committed');
    expect(s.timeline.map((p) => p.phase)).toContain('carryBack');
    expect(await hostSlot(lab.vm)).toBe(previous);
    expect((await onVm(lab.vm, `cat ${CARRIED}`)).trim()).toBe('setting=changed-after-upgrade');
    expect((await onVm(lab.vm, 'getent shadow carol | cut -d: -f2')).trim()).toBe(carolHash);
    expect((await onVm(lab.vm, 'sha256sum /srv/data/payload | cut -d" " -f1')).trim()).toBe(payloadSum);
    expect((await onVm(lab.vm, 'grub-editenv list'))).toContain(`saved_entry=ab-upgrade-slot-${previous}`);
    await plainRebootStaysOn(previous);
  });
});
