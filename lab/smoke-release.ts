// Smoke test of the release images, by hand-rolled runbook steps (not the product's code):
// boot the bookworm lab VM, unpack trixie.tar.zst onto slot B, carry the minimum (SSH host keys,
// root's authorized_keys, network, hostname, machine-id), write B's fstab, add a GRUB entry on
// slot A, grub-reboot into it and check Debian 13 answers on slot B; then the broken variant:
// the same steps must end back on slot A (kernel panic, panic=10, GRUB's saved default).
//
//   npx tsx lab/smoke-release.ts [bios|uefi] [--broken-only]
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startVm, type Layout, type VmHandle } from './vm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const layout = (process.argv.find((a) => a === 'bios' || a === 'uefi') ?? 'bios') as Layout;
const brokenOnly = process.argv.includes('--broken-only');
const build = (script: string, ...args: string[]) =>
  execFileSync('bash', [path.join(here, script), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;

const imageDir = build('build-image.sh', layout);
const releaseDir = build('build-release.sh');
const lab = JSON.parse(readFileSync(path.join(imageDir, 'layout.json'), 'utf8'));
const work = mkdtempSync(path.join(tmpdir(), 'ab-lab-smoke-'));
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);

async function sh(vm: VmHandle, cmd: string, timeoutMs = 120_000): Promise<string> {
  const r = await vm.ssh(cmd, { timeoutMs });
  if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

function streamTo(vm: VmHandle, file: string, cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('ssh', [...vm.sshArgs(), '--', cmd], { stdio: ['pipe', 'inherit', 'inherit'] });
    createReadStream(file).pipe(c.stdin);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`stream: exit ${code}`))));
  });
}

const B = lab.slots.b;
const A = lab.slots.a;
async function installOnB(vm: VmHandle, tarball: string): Promise<number> {
  const t0 = Date.now();
  await sh(vm, `umount /mnt 2>/dev/null; mkfs.ext4 -q -F -L ab-slot-b -U ${B.uuid} ${B.device} && mount ${B.device} /mnt`);
  await streamTo(vm, tarball, "zstd -dc | tar --numeric-owner --xattrs --xattrs-include='*' --acls -C /mnt -xf -");
  const secs = (Date.now() - t0) / 1000;
  await sh(
    vm,
    [
      'cp -a /etc/ssh/ssh_host_* /mnt/etc/ssh/',
      'mkdir -p /mnt/root/.ssh && cp -a /root/.ssh/authorized_keys /mnt/root/.ssh/',
      'cp -a /etc/network/interfaces /mnt/etc/network/interfaces',
      'cp -a /etc/hostname /etc/hosts /etc/machine-id /mnt/etc/',
      `printf 'UUID=${B.uuid} / ext4 errors=remount-ro 0 1\\nUUID=${lab.data.uuid} ${lab.data.mountPoint} ext4 defaults 0 2\\n' > /mnt/etc/fstab`,
      `mkdir -p /mnt${lab.data.mountPoint}`,
      'umount /mnt',
    ].join(' && '),
  );
  const kernel = await sh(vm, `mount -o ro ${B.device} /mnt && basename $(readlink -f /mnt/vmlinuz) && umount /mnt`);
  const entry = `menuentry 'ab-lab slot B' --id ab-slot-b {\n  search --no-floppy --fs-uuid --set=root ${B.uuid}\n  linux /boot/${kernel} root=UUID=${B.uuid} ro ${lab.grub.cmdline}\n  initrd /boot/${kernel.replace('vmlinuz', 'initrd.img')}\n}\n`;
  const script = Buffer.from(`#!/bin/sh\nexec tail -n +3 $0\n${entry}`).toString('base64');
  await sh(vm, `echo ${script} | base64 -d > /etc/grub.d/45_ab_lab && chmod 755 /etc/grub.d/45_ab_lab && update-grub 2>&1 && grub-reboot ab-slot-b`);
  return secs;
}

const vm = await startVm({ disk: path.join(imageDir, 'disk.raw'), layout, name: `smoke-${layout}`, workDir: work });
try {
  let boot = await vm.waitForSsh(300_000);
  log(`slot A up (${layout})`);
  if (!brokenOnly) {
    const unpack = await installOnB(vm, path.join(releaseDir, 'trixie.tar.zst'));
    log(`trixie unpacked onto slot B in ${unpack} s; grub-reboot ab-slot-b`);
    let t0 = Date.now();
    await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    const os = await sh(vm, '. /etc/os-release; echo $VERSION_ID $VERSION_CODENAME; findmnt -n -o SOURCE /; uname -r; findmnt -n -o SOURCE /srv/data');
    log(`after reboot (${(Date.now() - t0) / 1000} s): ${os.replace(/\n/g, ' | ')}`);
    if (!os.startsWith('13 trixie') || !os.includes(B.device)) throw new Error('did not boot trixie on slot B');
    t0 = Date.now();
    await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    const back = await sh(vm, '. /etc/os-release; echo $VERSION_ID; findmnt -n -o SOURCE /');
    log(`next reboot (${(Date.now() - t0) / 1000} s) is back on: ${back.replace(/\n/g, ' | ')}`);
    if (!back.startsWith('12') || !back.includes(A.device)) throw new Error('one-time boot did not fall back to slot A');
  }
  await installOnB(vm, path.join(releaseDir, 'trixie-broken.tar.zst'));
  log('broken trixie on slot B; grub-reboot ab-slot-b');
  const t0 = Date.now();
  await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
  boot = await vm.waitForSsh(600_000, { notBootId: boot });
  const back = await sh(vm, '. /etc/os-release; echo $VERSION_ID; findmnt -n -o SOURCE /');
  const serial = readFileSync(vm.serialLog, 'utf8');
  log(`broken boot came back after ${(Date.now() - t0) / 1000} s on: ${back.replace(/\n/g, ' | ')}; panic seen: ${/ab-lab-broken/.test(serial) && /Kernel panic/.test(serial)}; QEMU restarts ${vm.restarts}`);
  if (!back.startsWith('12') || !back.includes(A.device)) throw new Error('broken release did not fall back to slot A');
} finally {
  await vm.stop();
  rmSync(work, { recursive: true, force: true });
}
