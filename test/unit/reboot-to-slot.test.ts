// rebootToSlot against a scripted host that mounts like Linux does: a device mounted read-write
// cannot be mounted again read-only elsewhere. The case: a rollbackHost from slot a to slot b on a
// host whose GRUB (owned by a) had no entry for a, then b is unhealthy and the runbook reboots it
// back into a — the owner, which is also the target.
import { describe, expect, it } from 'vitest';
import { rebootToSlot } from '../../activities/boot.js';
import type { SshHost } from '../../activities/ssh.js';
import { labFacts, minimalProfile } from '../helpers/unit-fixtures.js';

const facts = labFacts({
  bootOwner: 'a',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-57-cloud-amd64 root=UUID=5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b ro ab.slot=a',
});
const profile = minimalProfile();

/** A host running slot b whose mounts follow the kernel's rule; records every mount and upload. */
function hostRunning(runningDevice: string) {
  const mounts = new Map<string, { dev: string; opts: string }>(); // dir → mount
  const log: string[] = [];
  const uploads: Record<string, string> = {};
  const script = async (body: string, args: string[] = []) => {
    let stdout = '';
    if (body.includes('findmnt -n -o SOURCE /)')) stdout = runningDevice;
    else if (body.startsWith('set -eu\nrealpath "$1"')) stdout = args[0]!;
    else if (body.includes('mount -o "$opts" "$dev" "$dir"')) {
      const [dev, dir, opts] = args as [string, string, string];
      const here = mounts.get(dir);
      if (!here) {
        const elsewhere = [...mounts].find(([, m]) => m.dev === dev && m.opts !== opts);
        if (elsewhere) throw new Error(`mount: ${dir}: ${dev} already mounted on ${elsewhere[0]}.`);
        mounts.set(dir, { dev, opts });
        log.push(`mount ${opts} ${dev} ${dir}`);
      }
    } else if (body.includes('umount -R')) {
      if (mounts.delete(args[0]!)) log.push(`umount ${args[0]}`);
    } else if (body.includes('printf Y; cat')) {
      stdout = args[0]!.endsWith('os-release') ? 'YPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' : 'N';
    } else if (body.includes('ls -1 "$1/boot"')) stdout = 'vmlinuz-6.1.0-57-cloud-amd64\ninitrd.img-6.1.0-57-cloud-amd64\n';
    else if (body.includes('blkid -s UUID')) stdout = `${args[0] === '/dev/vda1' ? facts.active.uuid : facts.spare.uuid}\n`;
    else if (body.includes('grub-editenv')) log.push(`grub-editenv ${args.join(' ')}`);
    else if (body.includes('boot_id')) stdout = 'a1b2c3d4-0000-4000-8000-000000000001\n';
    else if (body.includes('systemd-run')) stdout = '1764662400\n';
    return { stdout, stderr: '', code: 0 };
  };
  const upload = async (path: string, data: Buffer) => void (uploads[path] = data.toString());
  return { host: { script, upload } as unknown as SshHost, mounts, log, uploads };
}

describe('rebootToSlot', () => {
  it('reboots into the owner slot whose GRUB lacks its own entry, mounting it once (read-write)', async () => {
    const h = hostRunning('/dev/vda2');
    const r = await rebootToSlot(h.host, profile, facts, 'a', true);
    expect(r.mode).toBe('firmware');
    expect(h.log.filter((l) => l.startsWith('mount'))).toEqual(['mount rw /dev/vda1 /run/ab-upgrade/other']);
    expect(h.log).toContain('grub-editenv /run/ab-upgrade/other/boot/grub/grubenv ab-upgrade-slot-a');
    const custom = Object.entries(h.uploads).find(([p]) => p.startsWith('/run/ab-upgrade/other/boot/grub/'))?.[1] ?? '';
    expect(custom).toContain('--id ab-upgrade-slot-a ');
    expect(h.mounts.size).toBe(0); // all unmounted before the reboot
  });

  it('reboots into the other slot from the owner, mounting the target read-only to read its kernel', async () => {
    const h = hostRunning('/dev/vda1');
    await rebootToSlot(h.host, profile, facts, 'b', true);
    expect(h.log.filter((l) => l.startsWith('mount'))).toEqual(['mount ro /dev/vda2 /run/ab-upgrade/spare']);
    expect(h.log).toContain('grub-editenv /boot/grub/grubenv ab-upgrade-slot-b');
    expect(h.mounts.size).toBe(0);
  });
});
