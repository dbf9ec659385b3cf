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

/**
 * Host-side targets of /dev/… symlinks the profile names (/dev/disk/by-id/…, /dev/mapper/…),
 * as `realpath -e` printed them; lsblk's PATH column knows only the canonical names.
 */
export type DeviceLinks = Record<string, string>;

/** Prints "<ref>\t<realpath>" for each /dev/… argument; paired with parseDeviceLinks. */
export const DEVICE_LINKS_SH = `for r in "$@"; do case $r in /dev/*) printf '%s\\t%s\\n' "$r" "$(realpath -e -- "$r" 2>/dev/null || true)" ;; esac; done`;

export function parseDeviceLinks(out: string): DeviceLinks {
  const links: DeviceLinks = {};
  for (const line of out.split('\n')) {
    const [ref, target] = line.split('\t');
    if (ref && target) links[ref] = target;
  }
  return links;
}

// udev escapes characters in by-label names as \xHH (a space is \x20).
const unescapeUdev = (s: string) => s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** /dev/disk/by-{uuid,partuuid,label,partlabel}/X says the same as UUID=X etc. */
function byLinkAsKeyValue(ref: string): [string, string] | null {
  const m = /^\/dev\/disk\/by-(uuid|partuuid|label|partlabel)\/(.+)$/.exec(ref);
  return m ? [m[1]!.toUpperCase(), unescapeUdev(m[2]!)] : null;
}

export type RefLookup = { ok: true; device: LsblkDevice } | { ok: false; problem: string };

/**
 * The one device a reference names. Zero matches and several matches are both failures: a
 * stray disk with the same label (a cloned disk, an attached backup) must never be taken for
 * a slot, or it would be formatted.
 */
export function lookupDeviceRef(ref: string, devices: LsblkDevice[], links: DeviceLinks = {}): RefLookup {
  const byKey = ref.startsWith('/dev/') ? byLinkAsKeyValue(ref) : ([ref.slice(0, ref.indexOf('=')), ref.slice(ref.indexOf('=') + 1)] as [string, string]);
  let test: (d: LsblkDevice) => boolean;
  if (!byKey) {
    const target = links[ref];
    test = (d) => d.path === ref || (target !== undefined && d.path === target);
  } else {
    const [key, value] = byKey;
    const lower = value.toLowerCase();
    test =
      key === 'UUID'
        ? (d) => d.uuid?.toLowerCase() === lower
        : key === 'PARTUUID'
          ? (d) => d.partuuid?.toLowerCase() === lower
          : key === 'LABEL'
            ? (d) => d.label === value
            : key === 'PARTLABEL'
              ? (d) => d.partlabel === value
              : () => false;
  }
  // lsblk lists a device once per parent (multipath, RAID members): count devices, not rows.
  const matches = [...new Map(devices.filter(test).map((d) => [d.path, d])).values()];
  if (matches.length === 1) return { ok: true, device: matches[0]! };
  if (matches.length === 0) return { ok: false, problem: `${ref} matches no block device` };
  return { ok: false, problem: `${ref} is ambiguous: it matches ${matches.map((d) => d.path).join(', ')}; name the device by PARTUUID= instead` };
}

/** Finds the device a reference names; null when none or more than one matches. */
export function resolveDeviceRef(ref: DeviceRef | string, devices: LsblkDevice[], links: DeviceLinks = {}): LsblkDevice | null {
  const r = lookupDeviceRef(ref, devices, links);
  return r.ok ? r.device : null;
}

/** Conventional labels: what `slots: auto` looks for (filesystem LABEL or GPT PARTLABEL). */
export const slotLabel = (slot: SlotName) => `ab-slot-${slot}`;

/**
 * The label prepareSpare gives the spare's new filesystem: the one it has now, so a profile
 * naming the slot by LABEL= (the operator's own label) still resolves after every transition;
 * the conventional label only when the spare had none.
 */
export const spareFsLabel = (spare: { name: SlotName; label: string | null }) => spare.label || slotLabel(spare.name);

export type SlotResolution =
  | { ok: true; a: LsblkDevice; b: LsblkDevice }
  | { ok: false; problem: string };

/** One slot's device: the profile's reference, or for `auto` the conventional label. */
export function lookupSlot(slots: 'auto' | { a: DeviceRef; b: DeviceRef }, slot: SlotName, devices: LsblkDevice[], links: DeviceLinks = {}): RefLookup {
  if (slots !== 'auto') {
    const r = lookupDeviceRef(slots[slot], devices, links);
    return r.ok ? r : { ok: false, problem: `slots.${slot}: ${r.problem}` };
  }
  const l = slotLabel(slot);
  const found = [...new Map(devices.filter((d) => d.type === 'part' && (d.partlabel === l || d.label === l)).map((d) => [d.path, d])).values()];
  if (found.length === 1) return { ok: true, device: found[0]! };
  return {
    ok: false,
    problem: found.length
      ? `slots: auto, but ${found.map((d) => d.path).join(' and ')} are all labelled ${l}; name the slots by PARTUUID= in the profile`
      : `no partition labelled ${l} (set slots.a/slots.b in the profile)`,
  };
}

/**
 * Which partitions are slots a and b. `auto` looks for the conventional labels
 * (filesystem LABEL or GPT PARTLABEL `ab-slot-a` / `ab-slot-b`).
 */
export function resolveSlots(slots: 'auto' | { a: DeviceRef; b: DeviceRef }, devices: LsblkDevice[], links: DeviceLinks = {}): SlotResolution {
  const a = lookupSlot(slots, 'a', devices, links);
  if (!a.ok) return a;
  const b = lookupSlot(slots, 'b', devices, links);
  if (!b.ok) return b;
  if (a.device.path === b.device.path) return { ok: false, problem: `slots.a and slots.b both resolve to ${a.device.path}` };
  return { ok: true, a: a.device, b: b.device };
}

/**
 * The slot whose device holds `root`, checking each slot on its own: one reference that does
 * not resolve (a relabelled or missing spare) must not hide that the root is on the other.
 */
export function slotHolding(root: LsblkDevice, slots: 'auto' | { a: DeviceRef; b: DeviceRef }, devices: LsblkDevice[], links: DeviceLinks = {}): SlotName | null {
  for (const s of ['a', 'b'] as const) {
    const r = lookupSlot(slots, s, devices, links);
    if (r.ok && r.device.path === root.path) return s;
  }
  return null;
}

/**
 * A slot recorded at inspect, found again in the current device list: kernel names (/dev/sdX)
 * may change across a reboot, a partition's PARTUUID does not and prepareSpare keeps the
 * filesystem UUID. Null when neither identifies exactly one device.
 */
export function relocateSlot(slot: { partuuid: string | null; uuid: string | null }, devices: LsblkDevice[]): LsblkDevice | null {
  for (const ref of [slot.partuuid && `PARTUUID=${slot.partuuid}`, slot.uuid && `UUID=${slot.uuid}`]) {
    if (!ref) continue;
    const r = lookupDeviceRef(ref, devices.filter((d) => d.type === 'part' || d.type === 'lvm' || d.type === 'disk'));
    if (r.ok) return r.device;
  }
  return null;
}

/** Canonical device path of a findmnt source (which may be /dev/disk/by-uuid/… or UUID=…). */
export function deviceForSource(rawSource: string, devices: LsblkDevice[]): LsblkDevice | null {
  // findmnt names bind mounts and btrfs subvolumes /dev/vda1[/sub]; the device is before '['.
  const source = rawSource.replace(/\[.*\]$/, '');
  if (/^(PART)?(UUID|LABEL)=/.test(source) || source.startsWith('/dev/disk/by-')) return resolveDeviceRef(source, devices);
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
