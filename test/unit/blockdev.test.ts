import { describe, expect, it } from 'vitest';
import {
  deviceForSource,
  diskOf,
  LSBLK_COLUMNS,
  parseFindmnt,
  parseLsblk,
  resolveDeviceRef,
  resolveSlots,
  slotLabel,
  type LsblkDevice,
} from '../../lib/blockdev.js';

// `lsblk -J -b -o NAME,PATH,TYPE,SIZE,FSTYPE,UUID,PARTUUID,LABEL,PARTLABEL,PKNAME,MOUNTPOINTS` on a
// Debian 12 VM (util-linux 2.38.1): MBR disk, sizes in bytes as numbers, [null] for unmounted.
const BIOS_LSBLK = `{
   "blockdevices": [
      {
         "name": "sr0",
         "path": "/dev/sr0",
         "type": "rom",
         "size": 1073741312,
         "fstype": null,
         "uuid": null,
         "partuuid": null,
         "label": null,
         "partlabel": null,
         "pkname": null,
         "mountpoints": [
             null
         ]
      },{
         "name": "vda",
         "path": "/dev/vda",
         "type": "disk",
         "size": 42949672960,
         "fstype": null,
         "uuid": null,
         "partuuid": null,
         "label": null,
         "partlabel": null,
         "pkname": null,
         "mountpoints": [
             null
         ],
         "children": [
            {
               "name": "vda1",
               "path": "/dev/vda1",
               "type": "part",
               "size": 10737418240,
               "fstype": "ext4",
               "uuid": "5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b",
               "partuuid": "6f4c9d2e-01",
               "label": "ab-slot-a",
               "partlabel": null,
               "pkname": "vda",
               "mountpoints": [
                   "/"
               ]
            },{
               "name": "vda2",
               "path": "/dev/vda2",
               "type": "part",
               "size": 10737418240,
               "fstype": "ext4",
               "uuid": "8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a",
               "partuuid": "6f4c9d2e-02",
               "label": "ab-slot-b",
               "partlabel": null,
               "pkname": "vda",
               "mountpoints": [
                   null
               ]
            },{
               "name": "vda3",
               "path": "/dev/vda3",
               "type": "part",
               "size": 21473787904,
               "fstype": "ext4",
               "uuid": "3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10",
               "partuuid": "6f4c9d2e-03",
               "label": "data",
               "partlabel": null,
               "pkname": "vda",
               "mountpoints": [
                   "/srv/data"
               ]
            }
         ]
      }
   ]
}`;

// A GPT/UEFI variant: ESP at /boot/efi, PARTLABELs on every partition, no filesystem labels on
// the slots, data mounted twice (bind mount inside), PARTUUIDs in upper case as some tools print.
const UEFI_LSBLK = JSON.stringify({
  blockdevices: [
    {
      name: 'nvme0n1',
      path: '/dev/nvme0n1',
      type: 'disk',
      size: 256060514304,
      fstype: null,
      uuid: null,
      partuuid: null,
      label: null,
      partlabel: null,
      pkname: null,
      mountpoints: [null],
      children: [
        {
          name: 'nvme0n1p1',
          path: '/dev/nvme0n1p1',
          type: 'part',
          size: 536870912,
          fstype: 'vfat',
          uuid: 'A1B2-C3D4',
          partuuid: '0b7e3c1a-5d2f-4e6a-8c9b-1a2b3c4d5e6f',
          label: null,
          partlabel: 'EFI system partition',
          pkname: 'nvme0n1',
          mountpoints: ['/boot/efi'],
        },
        {
          name: 'nvme0n1p2',
          path: '/dev/nvme0n1p2',
          type: 'part',
          size: 34359738368,
          fstype: 'ext4',
          uuid: 'c0ffee00-1111-4222-8333-444455556666',
          partuuid: '7d9a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d',
          label: null,
          partlabel: 'ab-slot-a',
          pkname: 'nvme0n1',
          mountpoints: ['/'],
        },
        {
          name: 'nvme0n1p3',
          path: '/dev/nvme0n1p3',
          type: 'part',
          size: 34359738368,
          fstype: 'ext4',
          uuid: 'c0ffee00-7777-4888-9999-aaaabbbbcccc',
          partuuid: 'E5F6A7B8-C9D0-4E1F-A2B3-C4D5E6F7A8B9',
          label: null,
          partlabel: 'ab-slot-b',
          pkname: 'nvme0n1',
          mountpoints: [null],
        },
        {
          name: 'nvme0n1p4',
          path: '/dev/nvme0n1p4',
          type: 'part',
          size: 186804502528,
          fstype: 'xfs',
          uuid: 'd474e1a9-0b9c-4c3f-b1de-2f7a6c5b4e3d',
          partuuid: '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9',
          label: 'data',
          partlabel: 'data',
          pkname: 'nvme0n1',
          mountpoints: ['/srv/data', '/var/lib/postgresql'],
        },
      ],
    },
  ],
});

// LVM: the data lives on a logical volume whose physical volume is vda3.
const LVM_LSBLK = JSON.stringify({
  blockdevices: [
    {
      name: 'vda',
      path: '/dev/vda',
      type: 'disk',
      size: 42949672960,
      fstype: null,
      uuid: null,
      partuuid: null,
      label: null,
      partlabel: null,
      pkname: null,
      mountpoints: [null],
      children: [
        { name: 'vda1', path: '/dev/vda1', type: 'part', size: 10737418240, fstype: 'ext4', uuid: '11111111-1111-4111-8111-111111111111', partuuid: 'aabbccdd-01', label: 'ab-slot-a', partlabel: null, pkname: 'vda', mountpoints: ['/'] },
        { name: 'vda2', path: '/dev/vda2', type: 'part', size: 10737418240, fstype: 'ext4', uuid: '22222222-2222-4222-8222-222222222222', partuuid: 'aabbccdd-02', label: 'ab-slot-b', partlabel: null, pkname: 'vda', mountpoints: [null] },
        {
          name: 'vda3',
          path: '/dev/vda3',
          type: 'part',
          size: 21473787904,
          fstype: 'LVM2_member',
          uuid: 'Xy3kQ1-abcd-EFGH-ijkl-MNOP-qrst-UVwxYZ',
          partuuid: 'aabbccdd-03',
          label: null,
          partlabel: null,
          pkname: 'vda',
          mountpoints: [null],
          children: [
            { name: 'vg0-data', path: '/dev/mapper/vg0-data', type: 'lvm', size: 17179869184, fstype: 'ext4', uuid: '33333333-3333-4333-8333-333333333333', partuuid: null, label: 'data', partlabel: null, pkname: 'vda3', mountpoints: ['/srv/data'] },
            { name: 'vg0-swap', path: '/dev/mapper/vg0-swap', type: 'lvm', size: 2147483648, fstype: 'swap', uuid: '44444444-4444-4444-8444-444444444444', partuuid: null, label: null, partlabel: null, pkname: 'vda3', mountpoints: ['[SWAP]'] },
          ],
        },
      ],
    },
  ],
});

// `findmnt -J -o SOURCE,TARGET,FSTYPE` (nested, the default tree form).
const FINDMNT = `{
   "filesystems": [
      {
         "source": "/dev/vda1",
         "target": "/",
         "fstype": "ext4",
         "children": [
            {
               "source": "sysfs",
               "target": "/sys",
               "fstype": "sysfs",
               "children": [
                  {"source": "securityfs", "target": "/sys/kernel/security", "fstype": "securityfs"},
                  {"source": "cgroup2", "target": "/sys/fs/cgroup", "fstype": "cgroup2"}
               ]
            },
            {"source": "proc", "target": "/proc", "fstype": "proc"},
            {
               "source": "udev",
               "target": "/dev",
               "fstype": "devtmpfs",
               "children": [
                  {"source": "devpts", "target": "/dev/pts", "fstype": "devpts"}
               ]
            },
            {"source": "tmpfs", "target": "/run", "fstype": "tmpfs"},
            {"source": "/dev/vda3", "target": "/srv/data", "fstype": "ext4"},
            {"source": "/dev/vda1[/var/lib/x]", "target": "/srv/x", "fstype": "ext4"}
         ]
      }
   ]
}`;

const bios = () => parseLsblk(BIOS_LSBLK);
const uefi = () => parseLsblk(UEFI_LSBLK);
const byName = (devs: LsblkDevice[], name: string) => devs.find((d) => d.name === name)!;

describe('parseLsblk', () => {
  it('flattens the tree, parents before children, with sizes as numbers', () => {
    const devs = bios();
    expect(devs.map((d) => d.name)).toEqual(['sr0', 'vda', 'vda1', 'vda2', 'vda3']);
    expect(devs.every((d) => d.children === undefined)).toBe(true);
    expect(byName(devs, 'vda1')).toEqual({
      name: 'vda1',
      path: '/dev/vda1',
      type: 'part',
      size: 10737418240,
      fstype: 'ext4',
      uuid: '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b',
      partuuid: '6f4c9d2e-01',
      label: 'ab-slot-a',
      partlabel: null,
      pkname: 'vda',
      mountpoints: ['/'],
      children: undefined,
    });
  });

  it('turns [null] mountpoints into an empty list', () => {
    const devs = bios();
    expect(byName(devs, 'vda2').mountpoints).toEqual([]);
    expect(byName(devs, 'vda').mountpoints).toEqual([]);
    expect(byName(devs, 'vda3').mountpoints).toEqual(['/srv/data']);
  });

  it('keeps every mount point of a device mounted twice', () => {
    expect(byName(uefi(), 'nvme0n1p4').mountpoints).toEqual(['/srv/data', '/var/lib/postgresql']);
  });

  it('accepts sizes printed as strings (lsblk without -b, older versions) and missing columns', () => {
    const devs = parseLsblk(
      JSON.stringify({ blockdevices: [{ name: 'sda', path: '/dev/sda', type: 'disk', size: '1024', children: [{ name: 'sda1', path: '/dev/sda1', type: 'part', size: '512' }] }] }),
    );
    expect(devs[0]!.size).toBe(1024);
    expect(devs[1]).toMatchObject({ size: 512, fstype: null, uuid: null, partuuid: null, label: null, partlabel: null, mountpoints: [] });
  });

  it('fills a missing pkname from the tree parent', () => {
    const devs = parseLsblk(
      JSON.stringify({ blockdevices: [{ name: 'sda', path: '/dev/sda', type: 'disk', size: 1, children: [{ name: 'sda1', path: '/dev/sda1', type: 'part', size: 1, pkname: null }] }] }),
    );
    expect(devs[1]!.pkname).toBe('sda');
    expect(devs[0]!.pkname).toBeNull();
  });

  it('flattens LVM volumes below their physical volume partition', () => {
    const devs = parseLsblk(LVM_LSBLK);
    expect(devs.map((d) => d.name)).toEqual(['vda', 'vda1', 'vda2', 'vda3', 'vg0-data', 'vg0-swap']);
    expect(byName(devs, 'vg0-data')).toMatchObject({ type: 'lvm', path: '/dev/mapper/vg0-data', pkname: 'vda3', mountpoints: ['/srv/data'] });
  });

  it('rejects output without blockdevices or with malformed devices', () => {
    expect(() => parseLsblk('{}')).toThrow();
    expect(() => parseLsblk('not json')).toThrow();
    expect(() => parseLsblk(JSON.stringify({ blockdevices: [{ name: 'vda', type: 'disk', size: 1 }] }))).toThrow();
  });

  it('names exactly the columns the parser reads', () => {
    expect(LSBLK_COLUMNS).toBe('NAME,PATH,TYPE,SIZE,FSTYPE,UUID,PARTUUID,LABEL,PARTLABEL,PKNAME,MOUNTPOINTS');
    const keys = Object.keys(byName(bios(), 'vda1')).filter((k) => k !== 'children');
    expect(keys.map((k) => k.toUpperCase()).join(',')).toBe(LSBLK_COLUMNS);
  });
});

describe('parseFindmnt', () => {
  it('flattens nested children', () => {
    const mounts = parseFindmnt(FINDMNT);
    expect(mounts.map((m) => m.target)).toEqual([
      '/',
      '/sys',
      '/sys/kernel/security',
      '/sys/fs/cgroup',
      '/proc',
      '/dev',
      '/dev/pts',
      '/run',
      '/srv/data',
      '/srv/x',
    ]);
    expect(mounts[0]).toEqual({ source: '/dev/vda1', target: '/', fstype: 'ext4' });
  });

  it('reduces a bind mount source /dev/vda1[/var/lib/x] to its device', () => {
    expect(parseFindmnt(FINDMNT).find((m) => m.target === '/srv/x')).toEqual({ source: '/dev/vda1', target: '/srv/x', fstype: 'ext4' });
  });

  it('reads --list output (no children) and ignores extra columns', () => {
    const mounts = parseFindmnt(
      JSON.stringify({
        filesystems: [
          { source: '/dev/vda1', target: '/', fstype: 'ext4', options: 'rw,relatime,errors=remount-ro' },
          { source: '/dev/vda3', target: '/srv/data', fstype: 'ext4', options: 'rw,relatime' },
        ],
      }),
    );
    expect(mounts).toEqual([
      { source: '/dev/vda1', target: '/', fstype: 'ext4' },
      { source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' },
    ]);
  });

  it('rejects output without filesystems', () => {
    expect(() => parseFindmnt('{"blockdevices": []}')).toThrow();
  });
});

describe('resolveDeviceRef', () => {
  it('finds by filesystem UUID, case-insensitively', () => {
    expect(resolveDeviceRef('UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', bios())?.path).toBe('/dev/vda3');
    expect(resolveDeviceRef('UUID=3B1F0C52-9E2D-4D1A-8A55-0F6E2C7D9B10', bios())?.path).toBe('/dev/vda3');
    expect(resolveDeviceRef('UUID=a1b2-c3d4', uefi())?.path).toBe('/dev/nvme0n1p1');
  });

  it('finds by PARTUUID, case-insensitively in both directions', () => {
    expect(resolveDeviceRef('PARTUUID=6f4c9d2e-02', bios())?.path).toBe('/dev/vda2');
    expect(resolveDeviceRef('PARTUUID=6F4C9D2E-02', bios())?.path).toBe('/dev/vda2');
    expect(resolveDeviceRef('PARTUUID=e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9', uefi())?.path).toBe('/dev/nvme0n1p3');
  });

  it('does not confuse a PARTUUID with a UUID', () => {
    expect(resolveDeviceRef('UUID=6f4c9d2e-02', bios())).toBeNull();
    expect(resolveDeviceRef('PARTUUID=8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a', bios())).toBeNull();
  });

  it('finds by LABEL and PARTLABEL (exact case)', () => {
    expect(resolveDeviceRef('LABEL=ab-slot-b', bios())?.path).toBe('/dev/vda2');
    expect(resolveDeviceRef('LABEL=data', bios())?.path).toBe('/dev/vda3');
    expect(resolveDeviceRef('LABEL=DATA', bios())).toBeNull();
    expect(resolveDeviceRef('PARTLABEL=ab-slot-a', uefi())?.path).toBe('/dev/nvme0n1p2');
    expect(resolveDeviceRef('PARTLABEL=ab-slot-a', bios())).toBeNull();
    expect(resolveDeviceRef('LABEL=ab-slot-a', uefi())).toBeNull();
  });

  it('finds by /dev path, including device-mapper paths', () => {
    expect(resolveDeviceRef('/dev/vda1', bios())?.name).toBe('vda1');
    expect(resolveDeviceRef('/dev/mapper/vg0-data', parseLsblk(LVM_LSBLK))?.type).toBe('lvm');
  });

  it('returns null when nothing matches', () => {
    expect(resolveDeviceRef('/dev/sdz9', bios())).toBeNull();
    expect(resolveDeviceRef('UUID=00000000-0000-0000-0000-000000000000', bios())).toBeNull();
    expect(resolveDeviceRef('PARTLABEL=nope', uefi())).toBeNull();
    expect(resolveDeviceRef('LABEL=data', [])).toBeNull();
  });
});

describe('deviceForSource', () => {
  it('maps findmnt sources (paths, tags) to lsblk devices', () => {
    expect(deviceForSource('/dev/vda1', bios())?.name).toBe('vda1');
    expect(deviceForSource('UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', bios())?.name).toBe('vda3');
    expect(deviceForSource('LABEL=ab-slot-b', bios())?.name).toBe('vda2');
    expect(deviceForSource('PARTLABEL=ab-slot-b', uefi())?.name).toBe('nvme0n1p3');
    expect(deviceForSource('tmpfs', bios())).toBeNull();
    expect(deviceForSource('', bios())).toBeNull();
  });
});

describe('resolveSlots', () => {
  it('auto: finds the slots by filesystem label', () => {
    const r = resolveSlots('auto', bios());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.a.path).toBe('/dev/vda1');
    expect(r.b.path).toBe('/dev/vda2');
  });

  it('auto: finds the slots by GPT partition label', () => {
    const r = resolveSlots('auto', uefi());
    expect(r).toMatchObject({ ok: true, a: { path: '/dev/nvme0n1p2' }, b: { path: '/dev/nvme0n1p3' } });
  });

  it('auto: only partitions count, not an LV labelled like a slot', () => {
    const devs = parseLsblk(LVM_LSBLK).map((d) => (d.name === 'vda2' ? { ...d, label: null } : d.name === 'vg0-data' ? { ...d, label: slotLabel('b') } : d));
    const r = resolveSlots('auto', devs);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problem).toContain('ab-slot-b');
  });

  it('auto: names the missing label and the profile fields to set', () => {
    const noB = bios().map((d) => (d.name === 'vda2' ? { ...d, label: null } : d));
    const r = resolveSlots('auto', noB);
    expect(r).toEqual({ ok: false, problem: 'no partition labelled ab-slot-b (set slots.a/slots.b in the profile)' });
    const none = bios().map((d) => ({ ...d, label: null }));
    const r2 = resolveSlots('auto', none);
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.problem).toContain('ab-slot-a');
  });

  it('explicit: resolves each reference', () => {
    const r = resolveSlots({ a: 'PARTUUID=6f4c9d2e-01', b: '/dev/vda2' }, bios());
    expect(r).toMatchObject({ ok: true, a: { name: 'vda1' }, b: { name: 'vda2' } });
    // swapped: the profile decides which is which, not the labels
    const s = resolveSlots({ a: 'LABEL=ab-slot-b', b: 'LABEL=ab-slot-a' }, bios());
    expect(s).toMatchObject({ ok: true, a: { name: 'vda2' }, b: { name: 'vda1' } });
  });

  it('explicit: an unmatched reference names slots.a or slots.b and the reference', () => {
    const ra = resolveSlots({ a: 'PARTUUID=deadbeef-01', b: '/dev/vda2' }, bios());
    expect(ra).toEqual({ ok: false, problem: 'slots.a: PARTUUID=deadbeef-01 matches no block device' });
    const rb = resolveSlots({ a: '/dev/vda1', b: '/dev/sdb2' }, bios());
    expect(rb).toEqual({ ok: false, problem: 'slots.b: /dev/sdb2 matches no block device' });
  });

  it('explicit: two references to the same partition are refused', () => {
    const r = resolveSlots({ a: '/dev/vda1', b: 'UUID=5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b' }, bios());
    expect(r).toEqual({ ok: false, problem: 'slots.a and slots.b both resolve to /dev/vda1' });
  });
});

describe('diskOf', () => {
  it('walks a partition up to its disk', () => {
    const devs = bios();
    expect(diskOf(byName(devs, 'vda2'), devs)?.path).toBe('/dev/vda');
    expect(diskOf(byName(uefi(), 'nvme0n1p3'), uefi())?.path).toBe('/dev/nvme0n1');
  });

  it('returns the disk itself for a disk', () => {
    const devs = bios();
    expect(diskOf(byName(devs, 'vda'), devs)?.path).toBe('/dev/vda');
  });

  it('walks through LVM: LV -> PV partition -> disk', () => {
    const devs = parseLsblk(LVM_LSBLK);
    expect(diskOf(byName(devs, 'vg0-data'), devs)?.path).toBe('/dev/vda');
  });

  it('returns null for a device without a disk above it', () => {
    const devs = bios();
    expect(diskOf(byName(devs, 'sr0'), devs)).toBeNull();
    const orphan = { ...byName(devs, 'vda2'), pkname: 'missing' };
    expect(diskOf(orphan, devs)).toBeNull();
  });

  it('stops on a pkname cycle instead of looping forever', () => {
    const x: LsblkDevice = { ...byName(bios(), 'vda1'), name: 'x', pkname: 'y' };
    const y: LsblkDevice = { ...byName(bios(), 'vda2'), name: 'y', pkname: 'x' };
    expect(diskOf(x, [x, y])).toBeNull();
  });
});
