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
    // the old data line's options, dump and pass are kept
    expect(lines[2]).toBe(`UUID=${DATA}\t/srv/data\text4\tdefaults,noatime\t0\t2`);
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

  it('keeps the old data line options, dump and pass', () => {
    const out = renderFstab(input({ previous: 'LABEL=data /srv/data ext4 noatime,nodev,x-systemd.device-timeout=30s 1 3\n' }));
    expect(out.split('\n')[2]).toBe(`UUID=${DATA}\t/srv/data\text4\tnoatime,nodev,x-systemd.device-timeout=30s\t1\t3`);
  });

  it('drops the old data line however it writes the mount point, never keeping it twice', () => {
    for (const line of [
      '/dev/vda3 /srv/data/ ext4 noatime 0 2',
      '/dev/vda3 /srv/data// ext4 noatime 0 2',
      '/dev/vda3 /srv/\\144ata ext4 noatime 0 2',
    ]) {
      const out = renderFstab(input({ previous: `${line}\n` }));
      expect(entries(out).filter((e) => e[0] === '/dev/vda3' || e[1]!.startsWith('/srv/'))).toEqual([[`UUID=${DATA}`, '/srv/data', 'ext4', 'noatime', '0', '2']]);
    }
  });

  it('drops the old data line however it names the data device', () => {
    const refs = { dataRefs: ['/dev/vda3', 'LABEL=data', '/dev/disk/by-label/data'] };
    for (const spec of [`UUID=${DATA.toUpperCase()}`, `/dev/disk/by-uuid/${DATA}`, 'LABEL=data', '/dev/vda3', '/dev/disk/by-label/data']) {
      const out = renderFstab(input({ ...refs, previous: `${spec} /mnt/data ext4 noatime 0 2\n` }));
      expect(out).not.toContain('/mnt/data');
      expect(entries(out)).toHaveLength(2);
      expect(entries(out)[1]).toEqual([`UUID=${DATA}`, '/srv/data', 'ext4', 'noatime', '0', '2']);
    }
  });

  it('writes a data mount point with spaces as \\040 and matches the old escaped line', () => {
    const out = renderFstab(input({ dataMountPoint: '/srv/my data', previous: 'LABEL=data /srv/my\\040data ext4 noatime 0 2\n' }));
    expect(out.split('\n')[2]).toBe(`UUID=${DATA}\t/srv/my\\040data\text4\tnoatime\t0\t2`);
    expect(entries(out)).toHaveLength(2);
  });

  it('keeps swap, bind, NFS, CIFS and tmpfs lines verbatim', () => {
    const kept = [
      'UUID=0a1b2c3d-1111-2222-3333-444455556666 none swap sw,pri=10 0 0',
      'LABEL=swap none swap sw 0 0',
      'none /srv/x bind 0 0',
      '/srv/data/www /var/www none bind,nofail 0 0',
      '/opt/tools /srv/tools none rbind 0 0',
      'nas.example.net:/export/backup /mnt/backup nfs4 rw,hard,_netdev 0 0',
      '//files.example.net/share /mnt/share cifs credentials=/etc/cifs.cred,_netdev 0 0',
      'tmpfs /tmp tmpfs mode=1777,size=2G 0 0',
    ];
    const out = renderFstab(input({ previous: kept.join('\n') }));
    for (const l of kept) expect(out).toContain(`\n${l}\n`);
    expect(entries(out)).toHaveLength(2 + kept.length);
  });

  it('drops lines naming the old root device by kernel name or UUID', () => {
    const OLD_ROOT = '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b';
    const out = renderFstab(
      input({
        oldRootRefs: ['/dev/vda1', `UUID=${OLD_ROOT}`, 'PARTUUID=6f4c9d2e-01'],
        previous: `/dev/vda1 /mnt/old ext4 noauto 0 0\nUUID=${OLD_ROOT} /mnt/old2 ext4 ro 0 0\nPARTUUID=6f4c9d2e-01 /mnt/old3 ext4 ro 0 0\n/dev/vda15 /boot/efi vfat umask=0077 0 1\n`,
      }),
    );
    expect(entries(out).map((e) => e[1])).toEqual(['/', '/srv/data', '/boot/efi']);
  });
});
