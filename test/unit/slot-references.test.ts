// Every form of slot and data reference a profile accepts, through the transitions a host goes
// through: upgrade (inspect, format the spare, trial boot, comeback check) → commit → a second
// upgrade back onto the first slot → a later rollbackHost. The host is modelled as its lsblk
// and findmnt output; formatting applies exactly the arguments prepareSpare passes to mkfs.
import { describe, expect, it } from 'vitest';
import { relocateFacts } from '../../activities/devices.js';
import { slotFromProbe } from '../../activities/health.js';
import { formatSpareArgs } from '../../activities/slots.js';
import { lookupDeviceRef, parseLsblk, resolveSlots, type LsblkDevice } from '../../lib/blockdev.js';
import type { HostFacts, SlotName } from '../../lib/contract.js';
import { assessLayout, type RawHostFacts } from '../../lib/layout.js';
import { parseProfile, type Profile } from '../../lib/profile.js';

const GiB = 1024 ** 3;
const NOW = '2026-12-02T03:00:00.000Z';

/** A partition as lsblk shows it; its path and parent follow from the disk's name in this boot. */
type Part = Omit<LsblkDevice, 'path' | 'pkname' | 'children'> & { holders?: object[] };

/** A GPT/UEFI host laid out by its operator: ESP, swap, two root slots and data, own labels. */
function operatorHost(): Part[] {
  const p = (name: string, size: number, more: Partial<Part>): Part => ({
    name, type: 'part', size, fstype: null, uuid: null, partuuid: null, label: null, partlabel: null, mountpoints: [], ...more,
  });
  return [
    p('sda1', 512 * 1024 ** 2, { fstype: 'vfat', uuid: 'A1B2-C3D4', partuuid: '0b7e3c1a-5d2f-4e6a-8c9b-1a2b3c4d5e6f', partlabel: 'EFI System', mountpoints: ['/boot/efi'] }),
    p('sda2', 2 * GiB, { fstype: 'swap', uuid: '2c1d0e9f-8a7b-4c6d-9e5f-4a3b2c1d0e9f', partuuid: '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a', label: 'swap0', mountpoints: ['[SWAP]'] }),
    p('sda3', 10 * GiB, { fstype: 'ext4', uuid: '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b', partuuid: '7d9a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d', label: 'sys-blue', partlabel: 'root-one', mountpoints: ['/'] }),
    p('sda4', 10 * GiB, { fstype: 'ext4', uuid: '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a', partuuid: 'e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9', label: 'sys-green', partlabel: 'root-two' }),
    p('sda5', 20 * GiB, { fstype: 'ext4', uuid: '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', partuuid: '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9', label: 'srv', partlabel: 'data', mountpoints: ['/srv'] }),
  ];
}

/** The host as its tools print it; `disk` is the kernel's name for the disk in this boot. */
class ModelHost {
  parts = operatorHost();
  disk = 'sda';
  private fresh = 0;

  private path(p: Part) {
    return `/dev/${p.name.replace(/^sd./, this.disk)}`;
  }
  lsblkJson(): string {
    const dev = (p: Part) => ({ ...p, name: this.path(p).slice(5), path: this.path(p), pkname: this.disk, mountpoints: p.mountpoints.length ? p.mountpoints : [null], children: p.holders });
    // A second disk holding nothing of ours, so renaming the boot disk is visible.
    const other = { name: this.disk === 'sda' ? 'sdb' : 'sda', path: `/dev/${this.disk === 'sda' ? 'sdb' : 'sda'}`, type: 'disk', size: GiB, mountpoints: [null] };
    return JSON.stringify({ blockdevices: [{ name: this.disk, path: `/dev/${this.disk}`, type: 'disk', size: 60 * GiB, mountpoints: [null], children: this.parts.map(dev) }, other] });
  }
  findmntJson(): string {
    const fs = this.parts.flatMap((p) => p.mountpoints.filter((m) => m.startsWith('/')).map((m) => ({ source: this.path(p), target: m, fstype: p.fstype ?? '' })));
    return JSON.stringify({ filesystems: fs });
  }
  root(): Part {
    return this.parts.find((p) => p.mountpoints.includes('/'))!;
  }
  /** udev's /dev/disk/by-* links for the profile's /dev/… references. */
  links(refs: string[]): string {
    const target = (ref: string): Part | undefined => {
      const m = /^\/dev\/disk\/by-id\/wwn-0x5000c500a1b2c3d4-part(\d)$/.exec(ref);
      return m ? this.parts[Number(m[1]) - 1] : undefined;
    };
    return refs.flatMap((r) => (target(r) ? [`${r}\t${this.path(target(r)!)}`] : [])).join('\n');
  }
  raw(refs: string[]): RawHostFacts {
    const root = this.root();
    return {
      hostname: 'db7', bootId: `boot-${this.fresh}`, kernel: '6.1.0-40-amd64', cmdline: `root=UUID=${root.uuid} ro`, osRelease: 'ID=debian\nVERSION_ID="12"\n',
      lsblkJson: this.lsblkJson(), findmntJson: this.findmntJson(), rootUsedBytes: 2 * GiB, efi: true, grubVersion: 'grub-editenv (GRUB) 2.06-13+deb12u1',
      grubenvList: '', etcDefaultGrub: 'GRUB_DEFAULT=saved\n', grubCfgSourcesCustom: true, grubDirSource: this.path(root), deviceLinks: this.links(refs),
    };
  }
  /** What FORMAT_SPARE does with its arguments: a new filesystem with that label and UUID. */
  format(args: ReturnType<typeof formatSpareArgs>) {
    const [device, label, fstype, uuid] = args;
    const p = this.parts.find((q) => this.path(q) === device)!;
    Object.assign(p, { fstype, label, uuid: uuid || `0000000${++this.fresh}-0000-4000-8000-000000000000` });
  }
  /** The machine reboots into `part`; with `renumber` the firmware enumerates disks the other way round. */
  bootInto(part: Part, renumber = false) {
    this.root().mountpoints = [];
    part.mountpoints = ['/'];
    this.fresh++;
    if (renumber) this.disk = this.disk === 'sda' ? 'sdb' : 'sda';
  }
}

const FORMS: Record<string, { slots: Record<SlotName, string>; data: string }> = {
  'LABEL=': { slots: { a: 'LABEL=sys-blue', b: 'LABEL=sys-green' }, data: 'LABEL=srv' },
  'PARTLABEL=': { slots: { a: 'PARTLABEL=root-one', b: 'PARTLABEL=root-two' }, data: 'PARTLABEL=data' },
  'UUID=': { slots: { a: 'UUID=5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b', b: 'UUID=8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a' }, data: 'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10' },
  'PARTUUID=': { slots: { a: 'PARTUUID=7d9a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d', b: 'PARTUUID=e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9' }, data: 'PARTUUID=1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9' },
  '/dev/sdX': { slots: { a: '/dev/sda3', b: '/dev/sda4' }, data: '/dev/sda5' },
  '/dev/disk/by-label': { slots: { a: '/dev/disk/by-label/sys-blue', b: '/dev/disk/by-label/sys-green' }, data: '/dev/disk/by-label/srv' },
  '/dev/disk/by-partlabel': { slots: { a: '/dev/disk/by-partlabel/root-one', b: '/dev/disk/by-partlabel/root-two' }, data: '/dev/disk/by-partlabel/data' },
  '/dev/disk/by-uuid': { slots: { a: '/dev/disk/by-uuid/5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b', b: '/dev/disk/by-uuid/8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a' }, data: '/dev/disk/by-uuid/3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10' },
  '/dev/disk/by-partuuid': { slots: { a: '/dev/disk/by-partuuid/7d9a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d', b: '/dev/disk/by-partuuid/e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9' }, data: '/dev/disk/by-partuuid/1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9' },
  '/dev/disk/by-id': { slots: { a: '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part3', b: '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part4' }, data: '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4-part5' },
};

function profileFor(form: { slots: Record<SlotName, string>; data: string }): Profile {
  return parseProfile({
    host: 'db7.example.net', auth: { agent: true }, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: form.slots, data: { device: form.data, mountPoint: '/srv' }, release: { source: 'debootstrap', suite: 'trixie' },
  });
}

function inspect(host: ModelHost, profile: Profile): HostFacts {
  const refs = [profile.slots === 'auto' ? [] : [profile.slots.a, profile.slots.b], profile.data.device].flat();
  const a = assessLayout(profile, host.raw(refs), NOW);
  if (!a.ok) throw new Error(`refused:\n${a.refusals.join('\n')}`);
  return a.facts;
}

function probe(host: ModelHost, profile: Profile): SlotName | null {
  const refs = [profile.slots === 'auto' ? [] : [profile.slots.a, profile.slots.b], profile.data.device].flat();
  return slotFromProbe(profile, `/dev/${host.root().name.replace(/^sd./, host.disk)}`, host.lsblkJson(), host.links(refs));
}

const partOf = (host: ModelHost, device: string) => host.parts.find((p) => device.endsWith(p.name.slice(3)) && device.startsWith(`/dev/${host.disk}`))!;

describe.each(Object.entries(FORMS))('profile slots and data given as %s', (_form, refs) => {
  it('resolve through upgrade → commit → second upgrade → rollbackHost, labels and UUIDs kept', () => {
    const host = new ModelHost();
    const profile = profileFor(refs);
    const labelsBefore = host.parts.map((p) => p.label);

    // Upgrade 1: a → b.
    let f = inspect(host, profile);
    expect([f.active.name, f.spare.name, f.active.device]).toEqual(['a', 'b', '/dev/sda3']);
    expect(f.data.device).toBe('/dev/sda5');
    host.format(formatSpareArgs(f.spare));
    expect(inspect(host, profile).spare.device).toBe('/dev/sda4'); // a retried inspect still finds it
    host.bootInto(partOf(host, f.spare.device));
    expect(probe(host, profile)).toBe('b');
    // Commit runs in the new boot: the recorded devices are found again there.
    expect(relocateFacts(f, parseLsblk(host.lsblkJson())).spare.device).toBe('/dev/sda4');

    // Upgrade 2: b → a (slot a is the spare now).
    f = inspect(host, profile);
    expect([f.active.name, f.spare.name]).toEqual(['b', 'a']);
    host.format(formatSpareArgs(f.spare));
    host.bootInto(partOf(host, f.spare.device));
    expect(probe(host, profile)).toBe('a');

    // rollbackHost: back to b, and a reset before its commit lands on a again.
    f = inspect(host, profile);
    expect(f.active.name).toBe('a');
    host.bootInto(partOf(host, f.spare.device));
    expect(probe(host, profile)).toBe('b');
    host.bootInto(partOf(host, f.active.device));
    expect(probe(host, profile)).toBe('a');

    // The operator's labels and the slots' UUIDs are what they were.
    expect(host.parts.map((p) => p.label)).toEqual(labelsBefore);
    expect(host.parts.map((p) => p.uuid)).toEqual(operatorHost().map((p) => p.uuid));
  });
});

describe.each(Object.entries(FORMS).filter(([form]) => form !== '/dev/sdX'))('stable references (%s) across a disk renumbering', (_form, refs) => {
  it('find the slots and the boot disk by what does not change', () => {
    const host = new ModelHost();
    const profile = profileFor(refs);
    const f = inspect(host, profile);
    host.format(formatSpareArgs(f.spare));
    host.bootInto(host.parts[3]!, true); // slot b, but the boot disk is sdb in this boot
    expect(probe(host, profile)).toBe('b');
    const moved = relocateFacts(f, parseLsblk(host.lsblkJson()));
    expect([moved.active.device, moved.spare.device, moved.disk]).toEqual(['/dev/sdb3', '/dev/sdb4', '/dev/sdb']);
    expect(inspect(host, profile)).toMatchObject({ active: { name: 'b', device: '/dev/sdb4' }, disk: '/dev/sdb' });
  });
});

describe('slot check after a reboot', () => {
  it('one reference that no longer resolves does not hide the root on the other slot', () => {
    const host = new ModelHost();
    const profile = profileFor(FORMS['LABEL=']!);
    host.parts[3]!.label = 'ab-slot-b'; // what relabelling the spare used to do
    expect(probe(host, profile)).toBe('a');
    host.bootInto(host.parts[3]!);
    expect(probe(host, profile)).toBeNull();
  });

  it('an unresolvable reference is refused at inspect, naming the field', () => {
    const host = new ModelHost();
    const profile = profileFor({ ...FORMS['LABEL=']!, slots: { a: 'LABEL=sys-blue', b: 'LABEL=sys-gren' } });
    expect(() => inspect(host, profile)).toThrow(/slots\.b: LABEL=sys-gren matches no block device/);
  });

  it('warns that a kernel device name is not stable across reboots', () => {
    const host = new ModelHost();
    const a = assessLayout(profileFor(FORMS['/dev/sdX']!), host.raw([]), NOW);
    expect(a.warnings.filter((w) => /kernel device name/.test(w))).toHaveLength(3);
    expect(assessLayout(profileFor(FORMS['PARTUUID=']!), host.raw([]), NOW).warnings).toEqual([]);
  });
});

describe('a reference that matches more than one device is refused', () => {
  const devices = (): LsblkDevice[] => {
    const host = new ModelHost();
    // A stray disk (an attached backup clone) with a partition carrying the same label.
    const json = JSON.parse(host.lsblkJson());
    json.blockdevices[1].children = [{ name: 'sdb1', path: '/dev/sdb1', type: 'part', size: 10 * GiB, fstype: 'ext4', uuid: 'aaaaaaaa-0000-4000-8000-000000000001', label: 'sys-green', pkname: 'sdb', mountpoints: [null] }];
    return parseLsblk(JSON.stringify(json));
  };

  it('LABEL= naming the spare and a stray disk', () => {
    const r = lookupDeviceRef('LABEL=sys-green', devices());
    expect(r).toEqual({ ok: false, problem: 'LABEL=sys-green is ambiguous: it matches /dev/sda4, /dev/sdb1; name the device by PARTUUID= instead' });
    const s = resolveSlots({ a: 'LABEL=sys-blue', b: 'LABEL=sys-green' }, devices());
    expect(s.ok ? 'resolved' : s.problem).toMatch(/^slots\.b: LABEL=sys-green is ambiguous/);
  });

  it('slots: auto with two partitions labelled ab-slot-b', () => {
    const devs = devices().map((d) => (d.label === 'sys-green' ? { ...d, label: 'ab-slot-b' } : d.label === 'sys-blue' ? { ...d, label: 'ab-slot-a' } : d));
    const s = resolveSlots('auto', devs);
    expect(s.ok ? 'resolved' : s.problem).toBe('slots: auto, but /dev/sda4 and /dev/sdb1 are all labelled ab-slot-b; name the slots by PARTUUID= in the profile');
  });

  it('udev-escaped by-label names match the label they stand for', () => {
    const d = devices().find((x) => x.path === '/dev/sda4')!;
    expect(lookupDeviceRef('/dev/disk/by-label/root\\x20two', [{ ...d, label: 'root two' }])).toMatchObject({ ok: true, device: { path: '/dev/sda4' } });
  });

  it('a device listed under two parents (multipath) is one match, not two', () => {
    const d = devices().find((x) => x.path === '/dev/sda4')!;
    expect(lookupDeviceRef('LABEL=sys-green', [d, { ...d, pkname: 'sdb' }])).toMatchObject({ ok: true, device: { path: '/dev/sda4' } });
  });
});

describe('what the spare holds decides whether it may be formatted', () => {
  const refuseWith = (change: (spare: Part) => void): string[] => {
    const host = new ModelHost();
    change(host.parts[3]!);
    const a = assessLayout(profileFor(FORMS['PARTUUID=']!), host.raw([]), NOW);
    return a.ok ? [] : a.refusals;
  };

  it.each([
    ['an LVM physical volume', 'LVM2_member'],
    ['a LUKS container', 'crypto_LUKS'],
    ['a swap signature', 'swap'],
    ['a RAID member', 'linux_raid_member'],
  ])('refuses %s', (_what, fstype) => {
    expect(refuseWith((s) => Object.assign(s, { fstype, label: null }))).toEqual([
      `the spare slot /dev/sda4 holds a ${fstype} signature, not a filesystem we may overwrite; clear it by hand (wipefs) if it is really unused`,
    ]);
  });

  it('refuses a spare with a mounted logical volume on it, naming the volume', () => {
    const refusals = refuseWith((s) =>
      Object.assign(s, { fstype: 'LVM2_member', holders: [{ name: 'vg1-home', path: '/dev/mapper/vg1-home', type: 'lvm', size: GiB, fstype: 'ext4', mountpoints: ['/home'] }] }),
    );
    expect(refusals).toContain('the spare slot /dev/sda4 is in use by /dev/mapper/vg1-home');
  });

  it('refuses a spare that is active swap', () => {
    expect(refuseWith((s) => Object.assign(s, { fstype: 'swap', mountpoints: ['[SWAP]'] }))).toEqual(['the spare slot b (/dev/sda4) is in use as swap']);
  });

  it('refuses a spare that is a clone of the active slot (same filesystem UUID)', () => {
    expect(refuseWith((s) => Object.assign(s, { uuid: '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b' }))[0]).toMatch(/same filesystem UUID as the active slot/);
  });

  it('accepts an empty spare or an old filesystem', () => {
    expect(refuseWith((s) => Object.assign(s, { fstype: null, uuid: null, label: null }))).toEqual([]);
    expect(refuseWith((s) => Object.assign(s, { fstype: 'xfs' }))).toEqual([]);
  });
});
