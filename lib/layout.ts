// Turns what inspect read off a host into HostFacts, or into the list of reasons we refuse to
// touch it. Every refusal is decided here, before anything is written, so `plan` and the
// workflow's first phase give the same answer.
import type { HostFacts, SlotFacts, SlotName } from './contract.js';
import { deviceForSource, diskOf, lookupDeviceRef, parseDeviceLinks, parseFindmnt, parseLsblk, resolveSlots, type LsblkDevice } from './blockdev.js';
import type { Profile } from './profile.js';

/** Raw command outputs gathered by the inspect activity (read-only commands only). */
export interface RawHostFacts {
  hostname: string;
  bootId: string;
  kernel: string;
  cmdline: string;
  osRelease: string;
  lsblkJson: string;
  findmntJson: string;
  /** `df -B1 --output=used /` value for the running root. */
  rootUsedBytes: number;
  efi: boolean;
  grubVersion: string;
  /** `grub-editenv list` output ('' when grubenv is missing). */
  grubenvList: string;
  /** /etc/default/grub contents ('' when missing). */
  etcDefaultGrub: string;
  /** Whether /boot/grub/grub.cfg sources custom.cfg (Debian's 41_custom). */
  grubCfgSourcesCustom: boolean;
  /** findmnt -T /boot/grub SOURCE. */
  grubDirSource: string;
  /** DEVICE_LINKS_SH output for the profile's /dev/… references ('' when none). */
  deviceLinks?: string;
}

/** The profile's device references, in the order inspect resolves them. */
export const profileDeviceRefs = (p: Pick<Profile, 'slots' | 'data'>): string[] =>
  [...(p.slots === 'auto' ? [] : [p.slots.a, p.slots.b]), p.data.device];

// What a spare may hold for us to overwrite it: nothing, or a plain filesystem. Anything else
// (an LVM PV, a LUKS container, swap, a RAID or ZFS member) is someone's data or in use.
export const OVERWRITABLE_FS: ReadonlySet<string> = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs']);

/** Why `dev` must not be formatted as the spare, or null. */
export function spareContentProblem(dev: LsblkDevice, devices: LsblkDevice[]): string | null {
  const holders = devices.filter((d) => d.pkname === dev.name).map((d) => d.path);
  if (holders.length) return `the spare slot ${dev.path} is in use by ${holders.join(', ')}`;
  if (dev.fstype && !OVERWRITABLE_FS.has(dev.fstype))
    return `the spare slot ${dev.path} holds a ${dev.fstype} signature, not a filesystem we may overwrite; clear it by hand (wipefs) if it is really unused`;
  return null;
}

/** /dev/sdX-style names are given out in probe order and may change across a reboot. */
const isKernelName = (ref: string) => ref.startsWith('/dev/') && !/^\/dev\/(disk\/by-(uuid|partuuid|label|partlabel|id|path)\/|mapper\/)/.test(ref);

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return out;
}

export function parseGrubenv(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of list.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** GRUB_DEFAULT from /etc/default/grub (shell assignment, last one wins). */
export function grubDefaultSetting(etcDefaultGrub: string): string | null {
  let value: string | null = null;
  for (const line of etcDefaultGrub.split('\n')) {
    const m = /^\s*GRUB_DEFAULT=(.*)$/.exec(line);
    if (m) value = m[1]!.replace(/\s+#.*$/, '').trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return value;
}

/** Where the activities mount slots on the host (a tmpfs: gone after a reboot). */
export const OWN_MOUNTS = '/run/ab-upgrade';

const UNSAFE_GRUBENV_TYPES = /^(lvm|raid\d*|md|crypt|dm|mpath)$/;
const UNSAFE_GRUBENV_FS = /^(zfs|zfs_member|btrfs|xfs)$/;

export type LayoutAssessment = { ok: true; facts: HostFacts; warnings: string[] } | { ok: false; refusals: string[]; warnings: string[] };

export function assessLayout(profile: Profile, raw: RawHostFacts, now: string): LayoutAssessment {
  const refusals: string[] = [];
  const warnings: string[] = [];
  const devices = parseLsblk(raw.lsblkJson);
  const mounts = parseFindmnt(raw.findmntJson);
  const links = parseDeviceLinks(raw.deviceLinks ?? '');
  // Our own mounts of a slot (under /run/ab-upgrade, left by an interrupted attempt) do not count:
  // the next phase that needs the slot releases or reuses them.
  const mountsOf = (d: LsblkDevice) =>
    mounts.filter((m) => !m.target.startsWith(`${OWN_MOUNTS}/`) && deviceForSource(m.source, devices)?.path === d.path).map((m) => m.target);

  const rootMount = mounts.find((m) => m.target === '/');
  const rootDev = rootMount ? deviceForSource(rootMount.source, devices) : null;
  if (!rootDev) refusals.push(`cannot tell which block device holds / (findmnt says ${rootMount?.source ?? 'nothing'})`);

  const slots = resolveSlots(profile.slots, devices, links);
  if (!slots.ok) refusals.push(slots.problem);
  for (const ref of profileDeviceRefs(profile).filter(isKernelName))
    warnings.push(`${ref} is a kernel device name, which may change across a reboot; slots and data are found by PARTUUID/UUID after the first inspect, but name them by PARTUUID= in the profile`);

  let active: SlotName | null = null;
  if (slots.ok && rootDev) {
    if (rootDev.path === slots.a.path) active = 'a';
    else if (rootDev.path === slots.b.path) active = 'b';
    else refusals.push(`the running root ${rootDev.path} is neither slot a (${slots.a.path}) nor slot b (${slots.b.path})`);
  }

  const activeDev = slots.ok && active ? slots[active] : null;
  const spareName: SlotName | null = active ? (active === 'a' ? 'b' : 'a') : null;
  const spareDev = slots.ok && spareName ? slots[spareName] : null;
  if (spareDev) {
    const m = mountsOf(spareDev);
    if (m.length) refusals.push(`the spare slot ${spareName} (${spareDev.path}) is mounted at ${m.join(', ')}; unmount it first`);
    if (spareDev.size < raw.rootUsedBytes)
      refusals.push(
        `the spare slot ${spareName} (${spareDev.path}, ${spareDev.size} bytes) is smaller than the space used on the active slot (${raw.rootUsedBytes} bytes)`,
      );
    if (activeDev && spareDev.size < activeDev.size)
      warnings.push(`the spare slot is smaller than the active one (${spareDev.size} < ${activeDev.size} bytes)`);
    if (spareDev.type !== 'part') refusals.push(`the spare slot ${spareDev.path} is a ${spareDev.type}, not a partition`);
    // prepareSpare keeps the spare's UUID; a clone's copy of the active one would make every
    // UUID= reference (fstab, GRUB's root=) ambiguous after the upgrade.
    if (activeDev && spareDev.uuid && spareDev.uuid === activeDev.uuid)
      refusals.push(`the spare slot ${spareDev.path} has the same filesystem UUID as the active slot (${spareDev.uuid}), as a cloned disk does; give it a new one (tune2fs -U random) first`);
    if (spareDev.mountpoints.includes('[SWAP]')) refusals.push(`the spare slot ${spareName} (${spareDev.path}) is in use as swap`);
    else {
      const problem = spareContentProblem(spareDev, devices);
      if (problem) refusals.push(problem);
    }
  }

  const dataLookup = lookupDeviceRef(profile.data.device, devices, links);
  if (!dataLookup.ok) refusals.push(`data.device: ${dataLookup.problem}`);
  const dataDev = dataLookup.ok ? dataLookup.device : null;
  if (dataDev) {
    if (slots.ok && (dataDev.path === slots.a.path || dataDev.path === slots.b.path))
      refusals.push(`data.device ${dataDev.path} is one of the root slots`);
    const mounted = mountsOf(dataDev);
    if (!mounted.includes(profile.data.mountPoint))
      refusals.push(
        `data.device ${dataDev.path} is not mounted at data.mountPoint ${profile.data.mountPoint} (mounted at: ${mounted.join(', ') || 'nowhere'})`,
      );
    if (!dataDev.uuid) refusals.push(`data.device ${dataDev.path} has no filesystem UUID`);
  }

  const grubDirDev = deviceForSource(raw.grubDirSource, devices);
  if (!grubDirDev) refusals.push(`cannot tell which device holds /boot/grub (findmnt says ${raw.grubDirSource || 'nothing'})`);
  else if (UNSAFE_GRUBENV_TYPES.test(grubDirDev.type) || UNSAFE_GRUBENV_FS.test(grubDirDev.fstype ?? ''))
    refusals.push(
      `GRUB's environment block (/boot/grub/grubenv) is on ${grubDirDev.path} (${grubDirDev.type}, ${grubDirDev.fstype ?? 'no fs'}): GRUB cannot write it there, so a one-time trial boot would stick; keep /boot/grub on a plain partition`,
    );
  else if (activeDev && grubDirDev.path !== activeDev.path)
    refusals.push(`/boot/grub is on ${grubDirDev.path}, not on the active slot ${activeDev.path}: a separate /boot is not supported yet`);

  if (!raw.grubVersion) refusals.push('GRUB 2 (grub-editenv) is not installed on the host');
  if (!raw.grubCfgSourcesCustom)
    refusals.push('/boot/grub/grub.cfg does not source custom.cfg (Debian\'s /etc/grub.d/41_custom is missing); the trial entry would be invisible');

  const espMount = mounts.find((m) => m.target === '/boot/efi');
  const espDev = espMount ? deviceForSource(espMount.source, devices) : null;
  if (raw.efi && !espDev) refusals.push('the host boots with UEFI but no EFI system partition is mounted at /boot/efi');

  const disk = activeDev ? diskOf(activeDev, devices) : null;
  if (activeDev && !disk) refusals.push(`cannot find the disk holding ${activeDev.path}`);
  if (disk && spareDev && diskOf(spareDev, devices)?.path !== disk.path)
    warnings.push(`slots are on different disks; GRUB will be installed on ${disk.path}`);

  const env = parseGrubenv(raw.grubenvList);
  if (env.next_entry) warnings.push(`grubenv already has a one-time next_entry=${env.next_entry}`);

  if (refusals.length || !activeDev || !spareDev || !dataDev || !disk || !grubDirDev || !active || !spareName)
    return { ok: false, refusals, warnings };

  const os = parseOsRelease(raw.osRelease);
  const slotFacts = (name: SlotName, d: LsblkDevice, used: number | null): SlotFacts => ({
    name,
    device: d.path,
    partuuid: d.partuuid,
    uuid: d.uuid,
    label: d.label,
    fstype: d.fstype,
    sizeBytes: d.size,
    usedBytes: used,
  });
  const facts: HostFacts = {
    hostname: raw.hostname,
    bootId: raw.bootId,
    kernel: raw.kernel,
    cmdline: raw.cmdline,
    distro: {
      id: os.ID ?? 'unknown',
      versionId: os.VERSION_ID ?? '',
      codename: os.VERSION_CODENAME ?? '',
      prettyName: os.PRETTY_NAME ?? 'unknown',
    },
    active: slotFacts(active, activeDev, raw.rootUsedBytes),
    spare: slotFacts(spareName, spareDev, null),
    disk: disk.path,
    data: { device: dataDev.path, uuid: dataDev.uuid!, fstype: dataDev.fstype ?? 'auto', mountPoint: profile.data.mountPoint },
    bootMode: raw.efi ? 'uefi' : 'bios',
    esp: espDev && espDev.uuid ? { device: espDev.path, uuid: espDev.uuid, mountPoint: '/boot/efi' } : null,
    grub: {
      version: raw.grubVersion,
      grubenvPath: '/boot/grub/grubenv',
      grubenvDevice: grubDirDev.path,
      grubenvDeviceType: grubDirDev.type,
      defaultIsSaved: grubDefaultSetting(raw.etcDefaultGrub) === 'saved',
      savedEntry: env.saved_entry ?? null,
    },
    // Invariant of this tool: the committed, running slot owns the boot (README, "Who owns the boot").
    bootOwner: active,
    inspectedAt: now,
  };
  return { ok: true, facts, warnings };
}
