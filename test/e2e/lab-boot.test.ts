// The VM lab itself: the bookworm A/B image boots (BIOS via SeaBIOS, UEFI via OVMF), slot A is
// the root, the data partition is mounted, GRUB's environment block works, and the QMP power
// driver resets / powers the VM off and on. Slow (real QEMU under TCG); needs root and
// qemu-system-x86 (the image builder uses debootstrap and loop devices). Full scope only
// (AB_UPGRADE_E2E=full): every upgrade test exercises the same boots, resets and grub-reboot.
//   npx vitest run --config vitest.e2e.config.ts test/e2e/lab-boot.test.ts
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QmpPowerDriver } from '../../activities/power.js';
import { startVm, type Layout, type VmHandle } from '../../lab/vm.js';
import { fullE2e } from '../helpers/e2e-scope.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const canRun =
  fullE2e &&
  process.getuid?.() === 0 && spawnSync('qemu-system-x86_64', ['--version'], { timeout: 10_000 }).status === 0;

const BUILD_TIMEOUT_MS = 30 * 60_000;
const BOOT_TIMEOUT_MS = 5 * 60_000;

interface LabLayout {
  layout: Layout;
  slots: Record<'a' | 'b', { device: string; uuid: string; partuuid: string; label: string }>;
  data: { device: string; uuid: string; mountPoint: string };
  esp: { device: string; uuid: string; mountPoint: string } | null;
  hostname: string;
  grub: { cmdline: string };
  ssh: { hostKeyFingerprint: string };
}

function buildImage(layout: Layout): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'bash',
      [path.join(root, 'lab/build-image.sh'), layout],
      { timeout: BUILD_TIMEOUT_MS, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`lab/build-image.sh ${layout} failed: ${err.message}\n${stderr.slice(-4000)}`));
        else resolve(stdout.trim().split('\n').pop()!);
      },
    );
  });
}

async function sh(vm: VmHandle, command: string): Promise<string> {
  const r = await vm.ssh(command, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`"${command}" failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

describe.skipIf(!canRun).each(['bios', 'uefi'] as const)('lab VM (%s)', (layout) => {
  let vm: VmHandle;
  let lab: LabLayout;
  let work: string;
  let bootId: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    const out = await buildImage(layout);
    lab = JSON.parse(readFileSync(path.join(out, 'layout.json'), 'utf8')) as LabLayout;
    work = mkdtempSync(path.join(tmpdir(), `ab-lab-boot-${layout}-`));
    const t0 = Date.now();
    vm = await startVm({ disk: path.join(out, 'disk.raw'), layout, name: `boot-${layout}`, workDir: work });
    bootId = await vm.waitForSsh(BOOT_TIMEOUT_MS);
    timings.coldBootToSshS = (Date.now() - t0) / 1000;
  }, BUILD_TIMEOUT_MS + BOOT_TIMEOUT_MS);

  afterAll(async () => {
    await vm?.stop();
    console.log(`lab ${layout} timings: ${JSON.stringify(timings)}; QEMU restarts: ${vm?.restarts}`);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('boots slot A as / with the data partition mounted', async () => {
    const [source, uuid] = (await sh(vm, 'findmnt -n -o SOURCE,UUID /')).split(/\s+/);
    expect(source).toBe(lab.slots.a.device);
    expect(uuid).toBe(lab.slots.a.uuid);
    expect(await sh(vm, `findmnt -n -o SOURCE,FSTYPE ${lab.data.mountPoint}`)).toMatch(new RegExp(`^${lab.data.device}\\s+ext4$`));
    const cmdline = await sh(vm, 'cat /proc/cmdline');
    expect(cmdline).toContain(`root=UUID=${lab.slots.a.uuid}`);
    expect(cmdline).toContain(lab.grub.cmdline);
    expect(await sh(vm, 'hostname')).toBe(lab.hostname);
    expect(await sh(vm, '. /etc/os-release && echo $VERSION_ID')).toBe('12');
    // The spare: same size as A, its own label, not mounted.
    expect(await sh(vm, `blkid -s LABEL -o value ${lab.slots.b.device}`)).toBe(layout === 'bios' ? 'ab-slot-b' : 'sys-green');
    expect(await sh(vm, `blkid -s PARTUUID -o value ${lab.slots.b.device}`)).toBe(lab.slots.b.partuuid);
    expect(await sh(vm, `lsblk -bno SIZE ${lab.slots.a.device}; lsblk -bno SIZE ${lab.slots.b.device}`)).toMatch(/^(\d+)\n\1$/);
    expect(await sh(vm, `findmnt -n ${lab.slots.b.device} || echo unmounted`)).toBe('unmounted');
    expect(await sh(vm, 'grep ^LOAD_KEXEC= /etc/default/kexec')).toBe('LOAD_KEXEC=false');
    // The host key the builder recorded is the one sshd serves.
    expect(await sh(vm, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).toContain(lab.ssh.hostKeyFingerprint);
    if (layout === 'uefi') {
      await sh(vm, 'test -d /sys/firmware/efi');
      expect(await sh(vm, 'findmnt -n -o SOURCE,FSTYPE /boot/efi')).toMatch(new RegExp(`^${lab.esp!.device}\\s+vfat$`));
      await sh(vm, 'test -f /boot/efi/EFI/BOOT/BOOTX64.EFI');
    } else {
      await sh(vm, 'test ! -d /sys/firmware/efi');
    }
  });

  it('has a working GRUB environment block (grub-editenv, GRUB_DEFAULT=saved)', async () => {
    await sh(vm, 'grub-editenv list');
    await sh(vm, 'grub-editenv /boot/grub/grubenv set ab_lab_probe=1');
    expect(await sh(vm, 'grub-editenv list')).toContain('ab_lab_probe=1');
    await sh(vm, 'grub-editenv /boot/grub/grubenv unset ab_lab_probe');
    expect(await sh(vm, 'grep ^GRUB_DEFAULT= /etc/default/grub')).toBe('GRUB_DEFAULT=saved');
  });

  it('resets through QmpPowerDriver and comes back on a new boot', async () => {
    const power = new QmpPowerDriver(vm.qmpSocket);
    expect(await power.status()).toBe('on');
    const t0 = Date.now();
    await power.reset();
    const next = await vm.waitForSsh(BOOT_TIMEOUT_MS, { notBootId: bootId });
    timings.qmpResetToSshS = (Date.now() - t0) / 1000;
    expect(next).not.toBe(bootId);
    bootId = next;
    expect(await power.status()).toBe('on');
    expect((await sh(vm, 'findmnt -n -o SOURCE /'))).toBe(lab.slots.a.device);
  });

  it('consumes a grub-reboot one-time entry across a guest reboot', async () => {
    const entry = `gnulinux-simple-${lab.slots.a.uuid}`;
    await sh(vm, `grub-reboot ${entry}`);
    expect(await sh(vm, 'grub-editenv list')).toContain(`next_entry=${entry}`);
    const t0 = Date.now();
    await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
    const next = await vm.waitForSsh(BOOT_TIMEOUT_MS, { notBootId: bootId });
    timings.guestRebootToSshS = (Date.now() - t0) / 1000;
    bootId = next;
    // GRUB cleared next_entry when it booted it (GRUB writes grubenv itself).
    expect(await sh(vm, 'grub-editenv list')).not.toMatch(/next_entry=\S/);
    expect(await sh(vm, 'findmnt -n -o SOURCE /')).toBe(lab.slots.a.device);
  });

  it.runIf(layout === 'bios')('powers off and on through QmpPowerDriver', async () => {
    const power = new QmpPowerDriver(vm.qmpSocket);
    await power.powerOff();
    expect(await power.status()).toBe('off');
    expect(await vm.bootId(8_000)).toBeNull();
    const t0 = Date.now();
    await power.powerOn();
    expect(await power.status()).toBe('on');
    const next = await vm.waitForSsh(BOOT_TIMEOUT_MS, { notBootId: bootId });
    timings.powerOnToSshS = (Date.now() - t0) / 1000;
    bootId = next;
  });
});
