import { describe, expect, it } from 'vitest';
import { renderFstab, type FstabInput } from '../../lib/fstab.js';

const NEW_ROOT = '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a';
const DATA = '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10';

// A Debian installer fstab, edited over the years.
const PREVIOUS = `# /etc/fstab: static file system information.
#
# Use 'blkid' to print the universally unique identifier for a
# device; this may be used with UUID= as a more robust way to name devices
# that works even if disks are added and removed. See fstab(5).
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
# / was on /dev/vda1 during installation
UUID=5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b /               ext4    errors=remount-ro 0       1
# /boot/efi was on /dev/vda15 during installation
UUID=A1B2-C3D4  /boot/efi       vfat    umask=0077      0       1
/dev/mapper/vg0-swap none            swap    sw              0       0
LABEL=data	/srv/data	ext4	defaults,noatime	0	2
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
tmpfs /tmp tmpfs defaults,size=2G 0 0

`;

const input = (over: Partial<FstabInput> = {}): FstabInput => ({
  rootUuid: NEW_ROOT,
  rootFstype: 'ext4',
  dataUuid: DATA,
  dataFstype: 'ext4',
  dataMountPoint: '/srv/data',
  previous: PREVIOUS,
  ...over,
});

const entries = (fstab: string) =>
  fstab
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'))
    .map((l) => l.trim().split(/\s+/));

describe('renderFstab', () => {
  it('writes the new root and the data partition by UUID first', () => {
    const lines = renderFstab(input()).split('\n');
    expect(lines[0]).toBe('# /etc/fstab written by ab-upgrade for this slot');
    expect(lines[1]).toBe(`UUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1`);
    expect(lines[2]).toBe(`UUID=${DATA}\t/srv/data\text4\tdefaults\t0\t2`);
  });

  it('keeps the ESP, swap and other mounts verbatim (trimmed)', () => {
    const out = renderFstab(input());
    expect(out).toContain('UUID=A1B2-C3D4  /boot/efi       vfat    umask=0077      0       1\n');
    expect(out).toContain('/dev/mapper/vg0-swap none            swap    sw              0       0\n');
    expect(out).toContain('/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0\n');
    expect(out).toContain('tmpfs /tmp tmpfs defaults,size=2G 0 0\n');
  });

  it('drops the old root line and the old data mount line', () => {
    const out = renderFstab(input());
    expect(out).not.toContain('5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b');
    expect(out).not.toContain('LABEL=data');
    const mountPoints = entries(out).map((e) => e[1]);
    expect(mountPoints.filter((m) => m === '/')).toHaveLength(1);
    expect(mountPoints.filter((m) => m === '/srv/data')).toHaveLength(1);
    expect(mountPoints).toEqual(['/', '/srv/data', '/boot/efi', 'none', '/media/cdrom0', '/tmp']);
  });

  it('drops comments and blank lines of the old file', () => {
    const out = renderFstab(input());
    const comments = out.split('\n').filter((l) => l.startsWith('#'));
    expect(comments).toEqual(['# /etc/fstab written by ab-upgrade for this slot']);
    expect(out).not.toContain('during installation');
    expect(out.endsWith('\n')).toBe(true);
    expect(out.endsWith('\n\n')).toBe(false);
  });

  it('uses the data filesystem type and mount point it is given', () => {
    const out = renderFstab(input({ dataFstype: 'xfs', dataMountPoint: '/var/lib/postgresql', previous: 'UUID=x /var/lib/postgresql xfs defaults 0 2\nUUID=y /srv/data ext4 defaults 0 2\n' }));
    expect(entries(out)).toEqual([
      [`UUID=${NEW_ROOT}`, '/', 'ext4', 'errors=remount-ro', '0', '1'],
      [`UUID=${DATA}`, '/var/lib/postgresql', 'xfs', 'defaults', '0', '2'],
      ['UUID=y', '/srv/data', 'ext4', 'defaults', '0', '2'],
    ]);
  });

  it('does not drop mounts below the data mount point or below /', () => {
    const out = renderFstab(input({ previous: '/srv/data/pg /var/lib/postgresql none bind 0 0\nUUID=z /srv/data/archive ext4 defaults 0 2\n' }));
    expect(entries(out).map((e) => e[1])).toEqual(['/', '/srv/data', '/var/lib/postgresql', '/srv/data/archive']);
  });

  it('writes just root and data for an empty previous fstab', () => {
    expect(renderFstab(input({ previous: '' }))).toBe(
      `# /etc/fstab written by ab-upgrade for this slot\nUUID=${NEW_ROOT}\t/\text4\terrors=remount-ro\t0\t1\nUUID=${DATA}\t/srv/data\text4\tdefaults\t0\t2\n`,
    );
  });
});
