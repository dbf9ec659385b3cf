import { describe, expect, it } from 'vitest';
import { assessLayout, grubDefaultSetting, parseGrubenv, parseOsRelease, type LayoutAssessment, type RawHostFacts } from '../../lib/layout.js';
import type { Profile } from '../../lib/profile.js';
import { minimalProfile } from '../helpers/unit-fixtures.js';

const GiB = 1024 ** 3;
const UUID_A = '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b';
const UUID_B = '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a';
const UUID_DATA = '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10';
const NOW = '2025-11-25T21:00:00.000Z';

interface Dev {
  name: string;
  path: string;
  type: string;
  size: number;
  fstype: string | null;
  uuid: string | null;
  partuuid: string | null;
  label: string | null;
  partlabel: string | null;
  pkname: string | null;
  mountpoints: (string | null)[];
  children?: Dev[];
}

function dev(name: string, type: string, size: number, more: Partial<Dev> = {}): Dev {
  return {
    name,
    path: `/dev/${name}`,
    type,
    size,
    fstype: null,
    uuid: null,
    partuuid: null,
    label: null,
    partlabel: null,
    pkname: null,
    mountpoints: [null],
    ...more,
  };
}

/** The partitions of a Debian 12 BIOS VM: vda1 slot a, vda2 slot b, vda3 data. */
function biosParts(): Dev[] {
  return [
    dev('vda1', 'part', 10 * GiB, { fstype: 'ext4', uuid: UUID_A, partuuid: '6f4c9d2e-01', label: 'ab-slot-a', pkname: 'vda' }),
    dev('vda2', 'part', 10 * GiB, { fstype: 'ext4', uuid: UUID_B, partuuid: '6f4c9d2e-02', label: 'ab-slot-b', pkname: 'vda' }),
    dev('vda3', 'part', 20 * GiB, { fstype: 'ext4', uuid: UUID_DATA, partuuid: '6f4c9d2e-03', label: 'data', pkname: 'vda' }),
  ];
}

function lsblk(parts: Dev[], extraTop: Dev[] = []): string {
  return JSON.stringify({ blockdevices: [dev('vda', 'disk', 40 * GiB, { children: parts }), ...extraTop] });
}

interface Mnt {
  source: string;
  target: string;
  fstype: string;
}

/** findmnt -J nested output: the root and its children. */
function findmnt(root: Mnt, children: Mnt[]): string {
  return JSON.stringify({
    filesystems: [
      {
        ...root,
        children: [
          { source: 'sysfs', target: '/sys', fstype: 'sysfs' },
          { source: 'proc', target: '/proc', fstype: 'proc' },
          { source: 'udev', target: '/dev', fstype: 'devtmpfs', children: [{ source: 'devpts', target: '/dev/pts', fstype: 'devpts' }] },
          { source: 'tmpfs', target: '/run', fstype: 'tmpfs' },
          ...children,
        ],
      },
    ],
  });
}

const OS_RELEASE_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

const ETC_DEFAULT_GRUB = `# If you change this file, run 'update-grub' afterwards to update
# /boot/grub/grub.cfg.
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT="quiet"
GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"
#GRUB_DISABLE_OS_PROBER=false
GRUB_DEFAULT=saved
`;

const SAVED_ENTRY = `gnulinux-advanced-${UUID_A}>gnulinux-6.1.0-40-amd64-advanced-${UUID_A}`;

function biosRaw(): RawHostFacts {
  return {
    hostname: 'db1',
    bootId: '0d9c4c3e-6f2a-4b7e-9a51-3c8f1e2d7b60',
    kernel: '6.1.0-40-amd64',
    cmdline: `BOOT_IMAGE=/boot/vmlinuz-6.1.0-40-amd64 root=UUID=${UUID_A} ro console=ttyS0,115200n8 quiet`,
    osRelease: OS_RELEASE_12,
    lsblkJson: lsblk(biosParts()),
    findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, [{ source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' }]),
    rootUsedBytes: 2_400_000_000,
    efi: false,
    grubVersion: 'grub-editenv (GRUB) 2.06-13+deb12u1',
    grubenvList: `saved_entry=${SAVED_ENTRY}\n`,
    etcDefaultGrub: ETC_DEFAULT_GRUB,
    grubCfgSourcesCustom: true,
    grubDirSource: '/dev/vda1',
  };
}

/** The same VM after it committed slot b: root and /boot/grub on vda2. */
function bootedFromB(): RawHostFacts {
  return {
    ...biosRaw(),
    cmdline: `BOOT_IMAGE=/boot/vmlinuz-6.12.48+deb13-amd64 root=UUID=${UUID_B} ro console=ttyS0,115200n8 panic=10 ab.slot=b`,
    findmntJson: findmnt({ source: '/dev/vda2', target: '/', fstype: 'ext4' }, [{ source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' }]),
    grubDirSource: '/dev/vda2',
  };
}

function profile(over: Record<string, unknown> = {}): Profile {
  return minimalProfile({ host: 'db1.example.net', ...over });
}

function refusalsOf(a: LayoutAssessment): string[] {
  if (a.ok) throw new Error(`expected a refusal, got facts for ${a.facts.active.device}`);
  return a.refusals;
}

function factsOf(a: LayoutAssessment) {
  if (!a.ok) throw new Error(`expected facts, got refusals:\n${a.refusals.join('\n')}`);
  return a.facts;
}

describe('assessLayout: good layouts', () => {
  it('turns a good BIOS layout into facts', () => {
    const a = assessLayout(profile(), biosRaw(), NOW);
    const f = factsOf(a);
    expect(a.warnings).toEqual([]);
    expect(f.hostname).toBe('db1');
    expect(f.bootId).toBe('0d9c4c3e-6f2a-4b7e-9a51-3c8f1e2d7b60');
    expect(f.kernel).toBe('6.1.0-40-amd64');
    expect(f.distro).toEqual({ id: 'debian', versionId: '12', codename: 'bookworm', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
    expect(f.active).toEqual({
      name: 'a',
      device: '/dev/vda1',
      partuuid: '6f4c9d2e-01',
      uuid: UUID_A,
      label: 'ab-slot-a',
      fstype: 'ext4',
      sizeBytes: 10 * GiB,
      usedBytes: 2_400_000_000,
    });
    expect(f.spare).toEqual({
      name: 'b',
      device: '/dev/vda2',
      partuuid: '6f4c9d2e-02',
      uuid: UUID_B,
      label: 'ab-slot-b',
      fstype: 'ext4',
      sizeBytes: 10 * GiB,
      usedBytes: null,
    });
    expect(f.disk).toBe('/dev/vda');
    expect(f.data).toEqual({ device: '/dev/vda3', uuid: UUID_DATA, fstype: 'ext4', mountPoint: '/srv/data' });
    expect(f.bootMode).toBe('bios');
    expect(f.esp).toBeNull();
    expect(f.grub).toEqual({
      version: 'grub-editenv (GRUB) 2.06-13+deb12u1',
      grubenvPath: '/boot/grub/grubenv',
      grubenvDevice: '/dev/vda1',
      grubenvDeviceType: 'part',
      defaultIsSaved: true,
      savedEntry: SAVED_ENTRY,
    });
    expect(f.bootOwner).toBe('a');
    expect(f.inspectedAt).toBe(NOW);
  });

  it('reports defaultIsSaved false and no saved entry on a stock Debian GRUB', () => {
    const f = factsOf(assessLayout(profile(), { ...biosRaw(), etcDefaultGrub: 'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n', grubenvList: '' }, NOW));
    expect(f.grub.defaultIsSaved).toBe(false);
    expect(f.grub.savedEntry).toBeNull();
  });

  it('sees the same host booted from slot b as active b, spare a', () => {
    const f = factsOf(assessLayout(profile(), bootedFromB(), NOW));
    expect(f.active).toMatchObject({ name: 'b', device: '/dev/vda2', uuid: UUID_B, usedBytes: 2_400_000_000 });
    expect(f.spare).toMatchObject({ name: 'a', device: '/dev/vda1', uuid: UUID_A, usedBytes: null });
    expect(f.bootOwner).toBe('b');
    expect(f.grub.grubenvDevice).toBe('/dev/vda2');
    expect(f.disk).toBe('/dev/vda');
  });

  it('works with explicit slot references as well as labels', () => {
    const p = profile({ slots: { a: 'PARTUUID=6f4c9d2e-01', b: `UUID=${UUID_B}` }, data: { device: `UUID=${UUID_DATA}`, mountPoint: '/srv/data' } });
    const f = factsOf(assessLayout(p, biosRaw(), NOW));
    expect(f.active.device).toBe('/dev/vda1');
    expect(f.spare.device).toBe('/dev/vda2');
  });

  it('accepts a GPT/UEFI layout with an ESP at /boot/efi and PARTLABELs', () => {
    const parts: Dev[] = [
      dev('vda1', 'part', 512 * 1024 ** 2, { fstype: 'vfat', uuid: 'A1B2-C3D4', partuuid: '0b7e3c1a-5d2f-4e6a-8c9b-1a2b3c4d5e6f', partlabel: 'EFI system partition', pkname: 'vda' }),
      dev('vda2', 'part', 10 * GiB, { fstype: 'ext4', uuid: UUID_A, partuuid: '7d9a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d', partlabel: 'ab-slot-a', pkname: 'vda' }),
      dev('vda3', 'part', 10 * GiB, { fstype: 'ext4', uuid: UUID_B, partuuid: 'e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9', partlabel: 'ab-slot-b', pkname: 'vda' }),
      dev('vda4', 'part', 19 * GiB, { fstype: 'ext4', uuid: UUID_DATA, partuuid: '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9', label: 'data', partlabel: 'data', pkname: 'vda' }),
    ];
    const raw: RawHostFacts = {
      ...biosRaw(),
      efi: true,
      lsblkJson: lsblk(parts),
      findmntJson: findmnt({ source: '/dev/vda2', target: '/', fstype: 'ext4' }, [
        { source: '/dev/vda1', target: '/boot/efi', fstype: 'vfat' },
        { source: '/dev/vda4', target: '/srv/data', fstype: 'ext4' },
      ]),
      grubDirSource: '/dev/vda2',
      grubVersion: 'grub-editenv (GRUB) 2.06-13+deb12u1',
    };
    const f = factsOf(assessLayout(profile(), raw, NOW));
    expect(f.bootMode).toBe('uefi');
    expect(f.esp).toEqual({ device: '/dev/vda1', uuid: 'A1B2-C3D4', mountPoint: '/boot/efi' });
    expect(f.active).toMatchObject({ name: 'a', device: '/dev/vda2', label: null });
    expect(f.spare).toMatchObject({ name: 'b', device: '/dev/vda3' });
    expect(f.data.device).toBe('/dev/vda4');
  });

  it('accepts data on an LVM logical volume (only grubenv must avoid LVM)', () => {
    const parts = biosParts();
    parts[2] = dev('vda3', 'part', 20 * GiB, {
      fstype: 'LVM2_member',
      uuid: 'Xy3kQ1-abcd-EFGH-ijkl-MNOP-qrst-UVwxYZ',
      pkname: 'vda',
      children: [
        { ...dev('vg0-data', 'lvm', 16 * GiB, { fstype: 'ext4', uuid: UUID_DATA, label: 'data', pkname: 'vda3' }), path: '/dev/mapper/vg0-data' },
      ],
    });
    const raw = {
      ...biosRaw(),
      lsblkJson: lsblk(parts),
      findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, [{ source: '/dev/mapper/vg0-data', target: '/srv/data', fstype: 'ext4' }]),
    };
    const f = factsOf(assessLayout(profile(), raw, NOW));
    expect(f.data).toEqual({ device: '/dev/mapper/vg0-data', uuid: UUID_DATA, fstype: 'ext4', mountPoint: '/srv/data' });
  });

  it('finds data mounted by a bind mount source too', () => {
    const raw = {
      ...biosRaw(),
      findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, [
        { source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' },
        { source: '/dev/vda3[/pg]', target: '/var/lib/postgresql', fstype: 'ext4' },
      ]),
    };
    expect(assessLayout(profile(), raw, NOW).ok).toBe(true);
  });

  it('warns about a pending next_entry and a smaller spare without refusing', () => {
    const parts = biosParts();
    parts[1] = { ...parts[1]!, size: 9 * GiB };
    const a = assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts), grubenvList: `saved_entry=0\nnext_entry=ab-upgrade-slot-b\n` }, NOW);
    expect(a.ok).toBe(true);
    expect(a.warnings).toContain('grubenv already has a one-time next_entry=ab-upgrade-slot-b');
    expect(a.warnings.some((w) => w.includes(`${9 * GiB} < ${10 * GiB}`))).toBe(true);
  });

  it('does not warn about an empty next_entry left by an earlier grub-reboot', () => {
    const a = assessLayout(profile(), { ...biosRaw(), grubenvList: 'saved_entry=0\nnext_entry=\n' }, NOW);
    expect(a.ok).toBe(true);
    expect(a.warnings).toEqual([]);
  });

  it('warns when the slots are on different disks', () => {
    const parts = biosParts().filter((p) => p.name !== 'vda2');
    const vdb = dev('vdb', 'disk', 20 * GiB, {
      children: [dev('vdb1', 'part', 10 * GiB, { fstype: 'ext4', uuid: UUID_B, label: 'ab-slot-b', pkname: 'vdb' })],
    });
    const a = assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts, [vdb]) }, NOW);
    const f = factsOf(a);
    expect(f.spare.device).toBe('/dev/vdb1');
    expect(f.disk).toBe('/dev/vda');
    expect(a.warnings).toContain('slots are on different disks; GRUB will be installed on /dev/vda');
  });
});

describe('assessLayout: refusals', () => {
  it('refuses when the spare slot is mounted', () => {
    const raw = {
      ...biosRaw(),
      findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, [
        { source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' },
        { source: '/dev/vda2', target: '/mnt/b', fstype: 'ext4' },
      ]),
    };
    expect(refusalsOf(assessLayout(profile(), raw, NOW))).toEqual(['the spare slot b (/dev/vda2) is mounted at /mnt/b; unmount it first']);
  });

  it('refuses when the spare slot of a host on b (slot a) is mounted', () => {
    const raw = {
      ...bootedFromB(),
      findmntJson: findmnt({ source: '/dev/vda2', target: '/', fstype: 'ext4' }, [
        { source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' },
        { source: 'UUID=' + UUID_A, target: '/mnt/old', fstype: 'ext4' },
      ]),
    };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('spare slot a (/dev/vda1)');
    expect(r[0]).toContain('/mnt/old');
  });

  it('refuses when the spare slot is smaller than the used bytes of the active one', () => {
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), rootUsedBytes: 11 * GiB }, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('/dev/vda2');
    expect(r[0]).toContain(String(10 * GiB));
    expect(r[0]).toContain(String(11 * GiB));
    expect(r[0]).toMatch(/smaller than the space used/);
  });

  it('refuses a spare slot that is not a partition', () => {
    const parts = biosParts();
    parts[2] = dev('vda3', 'part', 20 * GiB, {
      fstype: 'LVM2_member',
      pkname: 'vda',
      children: [
        { ...dev('vg0-slotb', 'lvm', 10 * GiB, { fstype: 'ext4', uuid: '99999999-9999-4999-8999-999999999999', pkname: 'vda3' }), path: '/dev/mapper/vg0-slotb' },
        { ...dev('vg0-data', 'lvm', 8 * GiB, { fstype: 'ext4', uuid: UUID_DATA, label: 'data', pkname: 'vda3' }), path: '/dev/mapper/vg0-data' },
      ],
    });
    const raw = {
      ...biosRaw(),
      lsblkJson: lsblk(parts),
      findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, [{ source: '/dev/mapper/vg0-data', target: '/srv/data', fstype: 'ext4' }]),
    };
    const r = refusalsOf(assessLayout(profile({ slots: { a: '/dev/vda1', b: '/dev/mapper/vg0-slotb' } }), raw, NOW));
    expect(r).toEqual(['the spare slot /dev/mapper/vg0-slotb is a lvm, not a partition']);
  });

  it('refuses grubenv on an LVM volume', () => {
    const lv = { ...dev('vg0-boot', 'lvm', GiB, { fstype: 'ext4', uuid: '77777777-7777-4777-8777-777777777777', pkname: 'vdb1' }), path: '/dev/mapper/vg0-boot' };
    const vdb = dev('vdb', 'disk', 2 * GiB, { children: [dev('vdb1', 'part', 2 * GiB, { fstype: 'LVM2_member', pkname: 'vdb', children: [lv] })] });
    const raw = { ...biosRaw(), lsblkJson: lsblk(biosParts(), [vdb]), grubDirSource: '/dev/mapper/vg0-boot' };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('/boot/grub/grubenv');
    expect(r[0]).toContain('/dev/mapper/vg0-boot');
    expect(r[0]).toContain('(lvm, ext4)');
    expect(r[0]).toMatch(/trial boot would stick/);
  });

  it('refuses grubenv on software RAID', () => {
    const md = (pk: string) => dev('md0', 'raid1', 10 * GiB, { fstype: 'ext4', uuid: '12121212-3434-4565-8787-909090909090', pkname: pk });
    const disk = (n: string) =>
      dev(n, 'disk', 40 * GiB, {
        children: [
          dev(`${n}1`, 'part', 10 * GiB, { fstype: 'linux_raid_member', uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', pkname: n, children: [md(`${n}1`)] }),
        ],
      });
    // Slots are partitions elsewhere; only /boot/grub sits on the mirror.
    const raw = { ...biosRaw(), lsblkJson: lsblk(biosParts(), [disk('sda'), disk('sdb')]), grubDirSource: '/dev/md0' };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('/dev/md0');
    expect(r[0]).toContain('raid1');
  });

  it.each([
    ['btrfs', 'btrfs'],
    ['zfs', 'zfs'],
    ['zfs_member', 'zfs_member'],
  ])('refuses grubenv on a %s filesystem', (_label, fstype) => {
    const parts = biosParts();
    parts[0] = { ...parts[0]!, fstype };
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts) }, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('/dev/vda1');
    expect(r[0]).toContain(`(part, ${fstype})`);
  });

  it('refuses a separate /boot (grub directory not on the active slot)', () => {
    const parts = [...biosParts(), dev('vda4', 'part', GiB, { fstype: 'ext4', uuid: '66666666-6666-4666-8666-666666666666', pkname: 'vda' })];
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts), grubDirSource: '/dev/vda4' }, NOW));
    expect(r).toEqual(['/boot/grub is on /dev/vda4, not on the active slot /dev/vda1: a separate /boot is not supported yet']);
  });

  it('refuses when it cannot tell where /boot/grub is', () => {
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), grubDirSource: '' }, NOW));
    expect(r).toEqual(['cannot tell which device holds /boot/grub (findmnt says nothing)']);
  });

  it('refuses when the data device is missing, naming data.device', () => {
    const r = refusalsOf(assessLayout(profile({ data: { device: 'LABEL=pgdata', mountPoint: '/srv/data' } }), biosRaw(), NOW));
    expect(r).toEqual(['data.device: LABEL=pgdata matches no block device']);
  });

  it('refuses when the data partition is not mounted at data.mountPoint', () => {
    const raw = { ...biosRaw(), findmntJson: findmnt({ source: '/dev/vda1', target: '/', fstype: 'ext4' }, []) };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toEqual(['data.device /dev/vda3 is not mounted at data.mountPoint /srv/data (mounted at: nowhere)']);
  });

  it('refuses when the data partition is mounted elsewhere, listing where', () => {
    const r = refusalsOf(assessLayout(profile({ data: { device: 'LABEL=data', mountPoint: '/var/lib/data' } }), biosRaw(), NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('data.mountPoint /var/lib/data');
    expect(r[0]).toContain('mounted at: /srv/data');
  });

  it('refuses a data device that is one of the slots', () => {
    const r = refusalsOf(assessLayout(profile({ data: { device: '/dev/vda2', mountPoint: '/srv/data' } }), biosRaw(), NOW));
    expect(r).toContain('data.device /dev/vda2 is one of the root slots');
  });

  it('refuses a data device without a filesystem UUID', () => {
    const parts = biosParts();
    parts[2] = { ...parts[2]!, uuid: null };
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts) }, NOW));
    expect(r).toEqual(['data.device /dev/vda3 has no filesystem UUID']);
  });

  it('refuses when the running root is neither slot', () => {
    const vdb = dev('vdb', 'disk', 20 * GiB, { children: [dev('vdb1', 'part', 20 * GiB, { fstype: 'ext4', uuid: '55555555-5555-4555-8555-555555555555', pkname: 'vdb' })] });
    const raw = {
      ...biosRaw(),
      lsblkJson: lsblk(biosParts(), [vdb]),
      findmntJson: findmnt({ source: '/dev/vdb1', target: '/', fstype: 'ext4' }, [{ source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' }]),
      grubDirSource: '/dev/vdb1',
    };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toEqual(['the running root /dev/vdb1 is neither slot a (/dev/vda1) nor slot b (/dev/vda2)']);
  });

  it('refuses when it cannot tell which device holds /', () => {
    const raw = { ...biosRaw(), findmntJson: findmnt({ source: 'overlay', target: '/', fstype: 'overlay' }, [{ source: '/dev/vda3', target: '/srv/data', fstype: 'ext4' }]) };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toContain('cannot tell which block device holds / (findmnt says overlay)');
  });

  it('refuses when the slots cannot be found, naming the label', () => {
    const parts = biosParts().map((p) => ({ ...p, label: p.name === 'vda3' ? 'data' : null }));
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), lsblkJson: lsblk(parts) }, NOW));
    expect(r).toContain('no partition labelled ab-slot-a (set slots.a/slots.b in the profile)');
  });

  it('refuses an explicit slot reference that matches nothing, naming slots.b', () => {
    const r = refusalsOf(assessLayout(profile({ slots: { a: '/dev/vda1', b: 'PARTUUID=deadbeef-02' } }), biosRaw(), NOW));
    expect(r).toContain('slots.b: PARTUUID=deadbeef-02 matches no block device');
  });

  it('refuses a host without GRUB 2', () => {
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), grubVersion: '' }, NOW));
    expect(r).toEqual(['GRUB 2 (grub-editenv) is not installed on the host']);
  });

  it('refuses when grub.cfg does not source custom.cfg', () => {
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), grubCfgSourcesCustom: false }, NOW));
    expect(r).toHaveLength(1);
    expect(r[0]).toContain('custom.cfg');
    expect(r[0]).toContain('41_custom');
  });

  it('refuses a UEFI host without an ESP at /boot/efi', () => {
    const r = refusalsOf(assessLayout(profile(), { ...biosRaw(), efi: true }, NOW));
    expect(r).toEqual(['the host boots with UEFI but no EFI system partition is mounted at /boot/efi']);
  });

  it('lists every refusal at once', () => {
    const raw = { ...biosRaw(), grubVersion: '', grubCfgSourcesCustom: false, efi: true, rootUsedBytes: 20 * GiB };
    const r = refusalsOf(assessLayout(profile(), raw, NOW));
    expect(r).toHaveLength(4);
    expect(r.join('\n')).toMatch(/smaller than the space used/);
    expect(r.join('\n')).toMatch(/GRUB 2/);
    expect(r.join('\n')).toMatch(/custom\.cfg/);
    expect(r.join('\n')).toMatch(/UEFI/);
  });
});

describe('parseOsRelease', () => {
  it('reads quoted and unquoted values', () => {
    const os = parseOsRelease(OS_RELEASE_12);
    expect(os.ID).toBe('debian');
    expect(os.VERSION_ID).toBe('12');
    expect(os.VERSION_CODENAME).toBe('bookworm');
    expect(os.PRETTY_NAME).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(os.HOME_URL).toBe('https://www.debian.org/');
  });

  it('reads single quotes, skips comments and blank lines', () => {
    expect(parseOsRelease("# comment\n\nNAME='Debian GNU/Linux'\nID=debian\n")).toEqual({ NAME: 'Debian GNU/Linux', ID: 'debian' });
  });

  it('gives "unknown" distro fields in facts when os-release is empty', () => {
    const f = factsOf(assessLayout(profile(), { ...biosRaw(), osRelease: '' }, NOW));
    expect(f.distro).toEqual({ id: 'unknown', versionId: '', codename: '', prettyName: 'unknown' });
  });
});

describe('parseGrubenv', () => {
  it('reads grub-editenv list output, keeping "=" and ">" inside values', () => {
    expect(parseGrubenv(`saved_entry=${SAVED_ENTRY}\nnext_entry=\nboot_success=1\n`)).toEqual({
      saved_entry: SAVED_ENTRY,
      next_entry: '',
      boot_success: '1',
    });
    expect(parseGrubenv('x=a=b')).toEqual({ x: 'a=b' });
  });

  it('returns an empty object for a missing grubenv', () => {
    expect(parseGrubenv('')).toEqual({});
    expect(parseGrubenv('garbage\n=novalue\n')).toEqual({});
  });
});

describe('grubDefaultSetting', () => {
  it('takes the last assignment, unquoting it', () => {
    expect(grubDefaultSetting(ETC_DEFAULT_GRUB)).toBe('saved');
    expect(grubDefaultSetting('GRUB_DEFAULT="saved"\n')).toBe('saved');
    expect(grubDefaultSetting("GRUB_DEFAULT='1>2'\n")).toBe('1>2');
    expect(grubDefaultSetting('GRUB_DEFAULT=saved\nGRUB_DEFAULT=0\n')).toBe('0');
    expect(grubDefaultSetting('  GRUB_DEFAULT=2\n')).toBe('2');
  });

  it('ignores commented-out assignments and returns null when unset', () => {
    expect(grubDefaultSetting('#GRUB_DEFAULT=saved\nGRUB_TIMEOUT=5\n')).toBeNull();
    expect(grubDefaultSetting('')).toBeNull();
    expect(grubDefaultSetting('GRUB_DEFAULT=0\n# GRUB_DEFAULT=saved\n')).toBe('0');
  });
});
