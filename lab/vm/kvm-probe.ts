// Whether KVM really runs the lab's guest here, probed once per host kernel and QEMU version.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, release, tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OVMF_CODE, OVMF_VARS } from './firmware.js';
import { live } from './qemu-processes.js';
import type { Layout } from '../vm.js';

let kvmWorks: boolean | null = null;
/**
 * Does KVM actually boot a guest here? /dev/kvm can exist and still fail: on this kind of
 * machine (nested) SeaBIOS runs but GRUB never prints a line under KVM. The probe boots the
 * lab disk itself (throwaway -snapshot) under KVM and waits for the kernel's first line on the
 * serial port. The answer is cached per host kernel and QEMU version in the lab cache.
 */
export async function kvmUsable(disk: string, layout: Layout): Promise<boolean> {
  if (kvmWorks !== null) return kvmWorks;
  kvmWorks = false;
  if (!existsSync('/dev/kvm')) return false;
  const qemuVersion = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 5000 }).stdout?.split('\n')[0] ?? '?';
  const cacheDir = process.env.AB_LAB_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'ab-upgrade', 'lab');
  const key = `${release()}|${qemuVersion}`;
  const cacheFile = path.join(cacheDir, 'kvm-probe.json');
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as { key: string; works: boolean };
    if (cached.key === key) return (kvmWorks = cached.works);
  } catch {
    /* no cache */
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'ab-lab-kvm-probe-'));
  const serial = path.join(dir, 'serial.log');
  const args = ['-accel', 'kvm', '-m', '512', '-display', 'none', '-nodefaults', '-no-reboot', '-snapshot',
    '-drive', `if=virtio,format=${disk.endsWith('.qcow2') ? 'qcow2' : 'raw'},file=${disk}`, '-serial', `file:${serial}`];
  if (layout === 'uefi') {
    copyFileSync(OVMF_VARS, path.join(dir, 'vars.fd'));
    args.push('-machine', 'q35', '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${path.join(dir, 'vars.fd')}`);
  } else {
    args.push('-machine', 'pc');
  }
  const child = spawn('qemu-system-x86_64', args, { stdio: 'ignore' });
  live.add(child);
  child.on('error', () => undefined);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    await sleep(500);
    const out = existsSync(serial) ? readFileSync(serial, 'utf8') : '';
    if (/Linux version/.test(out)) {
      kvmWorks = true;
      break;
    }
  }
  child.kill('SIGKILL');
  live.delete(child);
  rmSync(dir, { recursive: true, force: true });
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(cacheFile, JSON.stringify({ key, works: kvmWorks, probedAt: new Date().toISOString() }) + '\n');
  } catch {
    /* cache is optional */
  }
  return kvmWorks;
}
