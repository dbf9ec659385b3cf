// Turns what inspect read off a host into HostFacts, or into the list of reasons we refuse to
// touch it. Every refusal is decided here, before anything is written, so `plan` and the
// workflow's first phase give the same answer.
import type { HostFacts, SlotFacts, SlotName } from './contract.js';
import { deviceForSource, diskOf, parseFindmnt, parseLsblk, resolveDeviceRef, resolveSlots, type LsblkDevice } from './blockdev.js';
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
}

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
  // Our own mounts of a slot (under /run/ab-upgrade, left by an interrupted attempt) do not count:
  // the next phase that needs the slot releases or reuses them.
  const mountsOf = (d: LsblkDevice) =>
    mounts.filter((m) => !m.target.startsWith(`${OWN_MOUNTS}/`) && deviceForSource(m.source, devices)?.path === d.path).map((m) => m.target);

  const rootMount = mounts.find((m) => m.target === '/');
  const rootDev = rootMount ? deviceForSource(rootMount.source, devices) : null;
  if (!rootDev) refusals.push(`cannot tell which block device holds / (findmnt says ${rootMount?.source ?? 'nothing'})`);

  const slots = resolveSlots(profile.slots, devices);
  if (!slots.ok) refusals.push(slots.problem);

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
  }

  const dataDev = resolveDeviceRef(profile.data.device, devices);
  if (!dataDev) refusals.push(`data.device: ${profile.data.device} matches no block device`);
  else {
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
    // Invariant of this tool: the committed, running slot owns the boot (see ARCHITECTURE.md).
    bootOwner: active,
    inspectedAt: now,
  };
  return { ok: true, facts, warnings };
}
