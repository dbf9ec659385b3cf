// Parsing of `lsblk --json` / `findmnt --json` output and resolution of the profile's device
// references against it. Pure: the activities run the commands, this decides.
import { z } from 'zod';
import type { SlotName } from './contract.js';
import type { DeviceRef } from './profile.js';

const lsblkDevice: z.ZodType<LsblkDevice> = z.lazy(() =>
  z.object({
    name: z.string(),
    path: z.string(),
    type: z.string(),
    size: z.union([z.number(), z.string()]).transform(Number),
    fstype: z.string().nullable().optional().transform((v) => v ?? null),
    uuid: z.string().nullable().optional().transform((v) => v ?? null),
    partuuid: z.string().nullable().optional().transform((v) => v ?? null),
    label: z.string().nullable().optional().transform((v) => v ?? null),
    partlabel: z.string().nullable().optional().transform((v) => v ?? null),
    pkname: z.string().nullable().optional().transform((v) => v ?? null),
    mountpoints: z
      .array(z.string().nullable())
      .nullable()
      .optional()
      .transform((v) => (v ?? []).filter((m): m is string => m !== null)),
    children: z.array(lsblkDevice).optional(),
  }) as unknown as z.ZodType<LsblkDevice>,
);

export interface LsblkDevice {
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
  mountpoints: string[];
  children?: LsblkDevice[];
}

/** Columns the parser expects; keep in step with the schema above. */
export const LSBLK_COLUMNS = 'NAME,PATH,TYPE,SIZE,FSTYPE,UUID,PARTUUID,LABEL,PARTLABEL,PKNAME,MOUNTPOINTS';

/** Parses `lsblk -J -b -o LSBLK_COLUMNS` into a flat list (parents before children). */
export function parseLsblk(json: string): LsblkDevice[] {
  const parsed = z.object({ blockdevices: z.array(lsblkDevice) }).parse(JSON.parse(json));
  const out: LsblkDevice[] = [];
  const walk = (devs: LsblkDevice[], parent: string | null) => {
    for (const d of devs) {
      out.push({ ...d, pkname: d.pkname ?? parent, children: undefined });
      if (d.children) walk(d.children, d.name);
    }
  };
  walk(parsed.blockdevices, null);
  return out;
}

export interface MountInfo {
  source: string;
  target: string;
  fstype: string;
}

/** Parses `findmnt -J -o SOURCE,TARGET,FSTYPE [...]` (nested or --list output). */
export function parseFindmnt(json: string): MountInfo[] {
  const fs: z.ZodType<{ source: string; target: string; fstype: string; children?: unknown[] }> = z.lazy(() =>
    z.object({ source: z.string(), target: z.string(), fstype: z.string(), children: z.array(fs).optional() }),
  ) as never;
  const parsed = z.object({ filesystems: z.array(fs) }).parse(JSON.parse(json));
  const out: MountInfo[] = [];
  const walk = (list: { source: string; target: string; fstype: string; children?: unknown[] }[]) => {
    for (const m of list) {
      // findmnt prints bind mounts as /dev/vda1[/sub]; the device is the part before '['.
      out.push({ source: m.source.replace(/\[.*\]$/, ''), target: m.target, fstype: m.fstype });
      if (m.children) walk(m.children as never);
    }
  };
  walk(parsed.filesystems);
  return out;
}

/** Finds the device a profile reference names; null when none matches. */
export function resolveDeviceRef(ref: DeviceRef, devices: LsblkDevice[]): LsblkDevice | null {
  const eq = ref.indexOf('=');
  if (ref.startsWith('/dev/')) return devices.find((d) => d.path === ref) ?? null;
  const key = ref.slice(0, eq);
  const value = ref.slice(eq + 1);
  const lower = value.toLowerCase();
  switch (key) {
    case 'UUID':
      return devices.find((d) => d.uuid?.toLowerCase() === lower) ?? null;
    case 'PARTUUID':
      return devices.find((d) => d.partuuid?.toLowerCase() === lower) ?? null;
    case 'LABEL':
      return devices.find((d) => d.label === value) ?? null;
    case 'PARTLABEL':
      return devices.find((d) => d.partlabel === value) ?? null;
    default:
      return null;
  }
}

/** Conventional labels: prepareSpare labels the filesystem, the lab labels GPT partitions too. */
export const slotLabel = (slot: SlotName) => `ab-slot-${slot}`;

export type SlotResolution =
  | { ok: true; a: LsblkDevice; b: LsblkDevice }
  | { ok: false; problem: string };

/**
 * Which partitions are slots a and b. `auto` looks for the conventional labels
 * (filesystem LABEL or GPT PARTLABEL `ab-slot-a` / `ab-slot-b`).
 */
export function resolveSlots(slots: 'auto' | { a: DeviceRef; b: DeviceRef }, devices: LsblkDevice[]): SlotResolution {
  const find = (slot: SlotName): LsblkDevice | null => {
    if (slots !== 'auto') return resolveDeviceRef(slots[slot], devices);
    const l = slotLabel(slot);
    return devices.find((d) => d.type === 'part' && (d.partlabel === l || d.label === l)) ?? null;
  };
  const a = find('a');
  const b = find('b');
  const describe = (slot: SlotName) =>
    slots === 'auto' ? `no partition labelled ${slotLabel(slot)} (set slots.a/slots.b in the profile)` : `slots.${slot}: ${slots[slot]} matches no block device`;
  if (!a) return { ok: false, problem: describe('a') };
  if (!b) return { ok: false, problem: describe('b') };
  if (a.path === b.path) return { ok: false, problem: `slots.a and slots.b both resolve to ${a.path}` };
  return { ok: true, a, b };
}

/** Canonical device path of a findmnt source (which may be /dev/disk/by-uuid/… or UUID=…). */
export function deviceForSource(rawSource: string, devices: LsblkDevice[]): LsblkDevice | null {
  // findmnt names bind mounts and btrfs subvolumes /dev/vda1[/sub]; the device is before '['.
  const source = rawSource.replace(/\[.*\]$/, '');
  if (/^(PART)?(UUID|LABEL)=/.test(source)) return resolveDeviceRef(source as DeviceRef, devices);
  return devices.find((d) => d.path === source || `/dev/${d.name}` === source) ?? null;
}

/** Walks up to the whole disk holding a partition (for grub-install). */
export function diskOf(dev: LsblkDevice, devices: LsblkDevice[]): LsblkDevice | null {
  let cur: LsblkDevice | undefined = dev;
  for (let i = 0; cur && i < 8; i++) {
    if (cur.type === 'disk') return cur;
    const parent: string | null = cur.pkname;
    cur = parent ? devices.find((d) => d.name === parent) : undefined;
  }
  return null;
}
