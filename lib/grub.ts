// GRUB text we write: menu entries for the slots, kept between markers in /boot/grub/custom.cfg
// (Debian's 41_custom sources that file at boot, so no update-grub run is needed on the old
// slot and its generated grub.cfg stays untouched).
import type { SlotName } from './contract.js';

export const BEGIN_MARK = '### BEGIN ab-upgrade (managed; do not edit) ###';
export const END_MARK = '### END ab-upgrade ###';

export const slotEntryId = (slot: SlotName) => `ab-upgrade-slot-${slot}`;

export interface SlotBootSpec {
  slot: SlotName;
  title: string;
  /** Filesystem UUID of the slot's root. */
  uuid: string;
  /** Paths inside the slot's filesystem. */
  kernel: string;
  initrd: string | null;
  cmdline: string;
}

const GRUB_SAFE = /^[A-Za-z0-9 ._:,=/@+()-]*$/;

/** Whether `value` may appear unquoted in our GRUB script; the profile schema checks kernelArgs with it. */
export function isGrubSafe(value: string): boolean {
  return GRUB_SAFE.test(value);
}

/** The characters isGrubSafe allows, for error messages. */
export const GRUB_SAFE_CHARS = 'letters, digits, spaces and . _ : , = / @ + ( ) -';

function assertGrubSafe(what: string, value: string): void {
  if (!isGrubSafe(value)) throw new Error(`${what} contains characters unsafe in a GRUB script: ${JSON.stringify(value)}`);
}

export function renderMenuEntry(spec: SlotBootSpec): string {
  assertGrubSafe('title', spec.title);
  assertGrubSafe('kernel path', spec.kernel);
  if (spec.initrd) assertGrubSafe('initrd path', spec.initrd);
  assertGrubSafe('kernel command line', spec.cmdline);
  if (!/^[0-9a-fA-F-]+$/.test(spec.uuid)) throw new Error(`bad filesystem UUID ${spec.uuid}`);
  return [
    `menuentry '${spec.title}' --id ${slotEntryId(spec.slot)} {`,
    '\tinsmod part_gpt',
    '\tinsmod part_msdos',
    '\tinsmod ext2',
    `\tsearch --no-floppy --fs-uuid --set=root ${spec.uuid}`,
    `\tlinux ${spec.kernel} root=UUID=${spec.uuid} ro ${spec.cmdline}`.trimEnd(),
    ...(spec.initrd ? [`\tinitrd ${spec.initrd}`] : []),
    '}',
  ].join('\n');
}

/** Replaces our managed block in an existing custom.cfg (or appends it), keeping everything else. */
export function withManagedBlock(existing: string, entries: SlotBootSpec[]): string {
  const block = [BEGIN_MARK, ...entries.map(renderMenuEntry), END_MARK].join('\n');
  const rest = withoutManagedBlock(existing).replace(/\n*$/, '');
  return rest ? `${rest}\n${block}\n` : `${block}\n`;
}

export function withoutManagedBlock(existing: string): string {
  const start = existing.indexOf(BEGIN_MARK);
  if (start < 0) return existing;
  const end = existing.indexOf(END_MARK, start);
  const after = end < 0 ? '' : existing.slice(end + END_MARK.length).replace(/^\n/, '');
  return existing.slice(0, start) + after;
}

/**
 * Kernel command line for a slot: the running one's parameters minus what names a root or a
 * boot image, plus the operator's extras, our slot marker and panic=10 (a panicking new kernel
 * must reboot, so the one-time boot falls back to the old slot instead of hanging).
 */
export function slotCmdline(runningCmdline: string, slot: SlotName, extra: string): string {
  const drop = /^(BOOT_IMAGE|root|rootflags|rootfstype|ro|rw|ab\.slot|panic|init)(=|$)/;
  const kept = runningCmdline.trim().split(/\s+/).filter((p) => p && !drop.test(p));
  const extras = extra.trim() ? extra.trim().split(/\s+/) : [];
  const all = [...kept, ...extras.filter((e) => !kept.includes(e))];
  if (!all.some((p) => p.startsWith('panic='))) all.push('panic=10');
  all.push(`ab.slot=${slot}`);
  return all.join(' ');
}

/** Picks the newest kernel from a list of /boot file names; null when there is none. */
export function newestKernel(bootFiles: string[]): { kernel: string; initrd: string | null; version: string } | null {
  const versions = bootFiles
    .map((f) => /^vmlinuz-(.+)$/.exec(f)?.[1])
    .filter((v): v is string => !!v)
    .sort(compareKernelVersions);
  const version = versions.at(-1);
  if (!version) return null;
  const initrd = bootFiles.includes(`initrd.img-${version}`) ? `/boot/initrd.img-${version}` : null;
  return { kernel: `/boot/vmlinuz-${version}`, initrd, version };
}

export function compareKernelVersions(a: string, b: string): number {
  // '+' separates too: trixie ABI names are like 6.12.48+deb13-amd64, and "9+deb13" vs
  // "10+deb13" must compare as numbers, not as text.
  const pa = a.split(/[.+~-]/);
  const pb = b.split(/[.+~-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const nx = Number(x);
    const ny = Number(y);
    const c = Number.isNaN(nx) || Number.isNaN(ny) ? x.localeCompare(y) : nx - ny;
    if (c !== 0) return c;
  }
  return 0;
}

/** Sets GRUB_DEFAULT=saved in /etc/default/grub text (replacing or appending). */
export function withSavedDefault(etcDefaultGrub: string): string {
  if (/^\s*GRUB_DEFAULT=/m.test(etcDefaultGrub)) return etcDefaultGrub.replace(/^\s*GRUB_DEFAULT=.*$/gm, 'GRUB_DEFAULT=saved');
  return `${etcDefaultGrub.replace(/\n*$/, '\n')}GRUB_DEFAULT=saved\n`;
}
