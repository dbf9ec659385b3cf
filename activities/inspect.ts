// Phase 1: read the host's facts with read-only commands, then let lib/layout decide.
import type { HostFacts } from '../lib/contract.js';
import { assessLayout, profileDeviceRefs, type LayoutAssessment, type RawHostFacts } from '../lib/layout.js';
import { DEVICE_LINKS_SH, LSBLK_COLUMNS } from '../lib/blockdev.js';
import type { Profile } from '../lib/profile.js';
import { sh } from './host-io.js';
import type { SshHost } from './ssh.js';

/** Shell function starting a section of output; parseSections splits on them. */
export const SECTION_FN = `sec() { printf '\\n@@%s\\n' "$1"; }`;

// One round trip; sections are separated by "@@name" lines. Nothing here writes. The
// arguments are the profile's device references (for the /dev/… links among them).
const GATHER = `
${SECTION_FN}
sec hostname; hostname
sec bootId; cat /proc/sys/kernel/random/boot_id
sec kernel; uname -r
sec cmdline; cat /proc/cmdline
sec osRelease; cat /etc/os-release
sec lsblk; lsblk -J -b -o ${LSBLK_COLUMNS}
sec findmnt; findmnt -J -o SOURCE,TARGET,FSTYPE
sec rootUsed; df -B1 --output=used / | tail -n 1
sec efi; [ -d /sys/firmware/efi ] && echo yes || echo no
sec grubVersion; (grub-editenv --version 2>/dev/null || true) | head -n 1
sec grubenv; grub-editenv list 2>/dev/null || true
sec etcDefaultGrub; cat /etc/default/grub 2>/dev/null || true
sec grubCfgCustom; grep -qs 'custom.cfg' /boot/grub/grub.cfg && echo yes || echo no
sec grubDir; findmnt -n -o SOURCE -T /boot/grub 2>/dev/null || findmnt -n -o SOURCE -T /boot
sec deviceLinks; ${DEVICE_LINKS_SH}
`;

export function parseSections(out: string): Record<string, string> {
  const sections: Record<string, string> = {};
  let name: string | null = null;
  let buf: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^@@(\w+)$/.exec(line);
    if (m) {
      if (name) sections[name] = buf.join('\n').trim();
      name = m[1]!;
      buf = [];
    } else buf.push(line);
  }
  if (name) sections[name] = buf.join('\n').trim();
  return sections;
}

export async function gatherRawFacts(h: SshHost, deviceRefs: string[]): Promise<RawHostFacts> {
  const s = parseSections(await sh(h, GATHER, deviceRefs, { timeoutMs: 60_000 }));
  return {
    hostname: s.hostname ?? '',
    bootId: s.bootId ?? '',
    kernel: s.kernel ?? '',
    cmdline: s.cmdline ?? '',
    osRelease: s.osRelease ?? '',
    lsblkJson: s.lsblk ?? '{"blockdevices":[]}',
    findmntJson: s.findmnt ?? '{"filesystems":[]}',
    rootUsedBytes: Number(s.rootUsed ?? 0),
    efi: s.efi === 'yes',
    grubVersion: s.grubVersion ?? '',
    grubenvList: s.grubenv ?? '',
    etcDefaultGrub: s.etcDefaultGrub ?? '',
    grubCfgSourcesCustom: s.grubCfgCustom === 'yes',
    grubDirSource: s.grubDir ?? '',
    deviceLinks: s.deviceLinks ?? '',
  };
}

export async function assessHost(h: SshHost, profile: Profile): Promise<LayoutAssessment> {
  return assessLayout(profile, await gatherRawFacts(h, profileDeviceRefs(profile)), new Date().toISOString());
}

export class UnsafeLayoutError extends Error {
  constructor(public readonly refusals: string[]) {
    super(`refusing to upgrade this host:\n${refusals.map((r) => `  - ${r}`).join('\n')}`);
    this.name = 'UnsafeLayoutError';
  }
}

export async function inspectFacts(h: SshHost, profile: Profile): Promise<HostFacts> {
  const a = await assessHost(h, profile);
  if (!a.ok) throw new UnsafeLayoutError(a.refusals);
  return a.facts;
}

/** Which of `paths` exist on the running slot (for `plan`). */
export async function presentPaths(h: SshHost, paths: string[]): Promise<Set<string>> {
  const out = await sh(h, 'for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\n" "$p"; fi; done', paths);
  return new Set(out.split('\n').filter(Boolean));
}
