// prepareSpare's mkfs against real block devices (a GPT disk image on a loop device) through a
// real sshd: it keeps the operator's label and the UUID, and refuses, in the same shell as mkfs,
// a device that is not what inspect saw or that holds something other than a filesystem.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSpare } from '../../activities/slots.js';
import type { HostFacts, SlotFacts } from '../../lib/contract.js';
import { sshdProfile, sshdSession } from '../helpers/sshd.js';

const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' }).trim();
const blkid = (dev: string, tag: string) => run('sh', '-c', 'blkid -p -s "$1" -o value "$2" || true', 'sh', tag, dev);

describe.skipIf(process.getuid?.() !== 0)('formatSpare on a loop device over a real sshd', () => {
  const session = sshdSession('ab-format-');
  let loop: string;
  const part = (n: number) => `${loop}p${n}`;

  /** The spare as inspect would have recorded it from the device as it is now. */
  const seen = (dev: string): SlotFacts => ({
    name: 'b', device: dev, partuuid: blkid(dev, 'PART_ENTRY_UUID') || null, uuid: blkid(dev, 'UUID') || null,
    label: blkid(dev, 'LABEL') || null, fstype: blkid(dev, 'TYPE') || null, sizeBytes: 24 << 20, usedBytes: null,
  });
  const format = (spare: SlotFacts) => formatSpare(session.h, sshdProfile(session.sshd), { spare } as HostFacts);

  beforeAll(async () => {
    const img = join(session.tmp, 'disk.img');
    run('truncate', '-s', '80M', img);
    run('sh', '-c', `printf 'label: gpt\\n,24M\\n,24M\\n,24M\\n' | sfdisk -q "$1"`, 'sh', img);
    loop = run('losetup', '-fP', '--show', img);
    // Without udev, losetup -P does not always create the partition nodes; partx does.
    run('sh', '-c', 'partx -a "$1" 2>/dev/null || true', 'sh', loop);
  }, 60_000);

  afterAll(() => {
    if (loop) run('losetup', '-d', loop);
  });

  it('keeps the operator\'s label and the filesystem UUID', async () => {
    run('mkfs.ext4', '-q', '-F', '-L', 'sys-green', part(1));
    const before = seen(part(1));
    run('sh', '-c', 'mkdir -p "$1/m" && mount "$2" "$1/m" && touch "$1/m/old-release" && umount "$1/m"', 'sh', session.tmp, part(1));
    await format(before);
    expect(blkid(part(1), 'LABEL')).toBe('sys-green');
    expect(blkid(part(1), 'UUID')).toBe(before.uuid);
    expect(blkid(part(1), 'TYPE')).toBe('ext4');
    // It really is a new filesystem.
    expect(run('sh', '-c', 'mount -o ro "$2" "$1/m" && ls -A "$1/m"; umount "$1/m"', 'sh', session.tmp, part(1))).toBe('lost+found');
  });

  it('gives an unlabelled spare the conventional label', async () => {
    run('wipefs', '-q', '-a', part(2));
    await format(seen(part(2)));
    expect(blkid(part(2), 'LABEL')).toBe('ab-slot-b');
  });

  it('refuses a partition that no longer has the PARTUUID inspect saw, and writes nothing', async () => {
    run('mkfs.ext4', '-q', '-F', '-L', 'keep-me', part(3));
    const uuid = blkid(part(3), 'UUID');
    await expect(format({ ...seen(part(3)), partuuid: '00000000-1111-4222-8333-444444444444' })).rejects.toThrow(/no longer has PARTUUID 00000000-1111-4222-8333-444444444444/);
    expect([blkid(part(3), 'LABEL'), blkid(part(3), 'UUID')]).toEqual(['keep-me', uuid]);
  });

  it('refuses a filesystem made since inspect (its UUID changed)', async () => {
    const before = seen(part(3));
    run('mkfs.ext4', '-q', '-F', '-L', 'someone-else', part(3));
    await expect(format(before)).rejects.toThrow(/no longer has UUID/);
    expect(blkid(part(3), 'LABEL')).toBe('someone-else');
  });

  it.each([
    ['swap', (d: string) => run('mkswap', '-q', d)],
    ['vfat', (d: string) => run('mkfs.vfat', d)],
  ])('refuses a spare holding a %s signature', async (type, make) => {
    make(part(2));
    await expect(format(seen(part(2)))).rejects.toThrow(new RegExp(`holds a ${type} signature`));
    expect(blkid(part(2), 'TYPE')).toBe(type);
  });

  it('refuses a spare in use as swap', async () => {
    run('mkswap', '-q', part(2));
    run('swapon', part(2));
    try {
      await expect(format(seen(part(2)))).rejects.toThrow(/in use as swap/);
    } finally {
      run('swapoff', part(2));
    }
  });
});
