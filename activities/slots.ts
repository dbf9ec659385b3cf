// Phase 2: format the spare slot. The checks are repeated on the host right before mkfs, in
// the same shell, so a spare that became active or got mounted since inspect is never touched.
import type { HostFacts } from '../lib/contract.js';
import { spareFsLabel } from '../lib/blockdev.js';
import { lowerPriority } from '../lib/host-priority.js';
import { OVERWRITABLE_FS } from '../lib/layout.js';
import type { Profile } from '../lib/profile.js';
import { OTHER_MNT, RUN_DIR, sh, unmount, SPARE_MNT } from './host-io.js';
import type { SshHost } from './ssh.js';

// Args: device, label, fstype, then what inspect saw: filesystem UUID and PARTUUID ('' when
// none). A device that no longer carries them is not the partition inspect assessed.
const FORMAT_SPARE = `
dev=$1; label=$2; fstype=$3; uuid=$4; partuuid=$5
root=$(findmnt -n -o SOURCE /)
if [ "$(realpath "$root")" = "$(realpath "$dev")" ]; then echo "refusing: $dev is the running root" >&2; exit 3; fi
if findmnt -n -S "$dev" >/dev/null; then echo "refusing: $dev is mounted" >&2; exit 3; fi
if grep -qs "^$(realpath "$dev") " /proc/swaps; then echo "refusing: $dev is in use as swap" >&2; exit 3; fi
# blkid -p reads the device itself (no udev database needed); lsblk may print either case.
lower() { tr 'A-F' 'a-f'; }
probe() { blkid -p -s "$1" -o value "$dev" | lower || true; }
if [ -n "$partuuid" ] && [ "$(probe PART_ENTRY_UUID)" != "$(printf %s "$partuuid" | lower)" ]; then echo "refusing: $dev no longer has PARTUUID $partuuid" >&2; exit 3; fi
if [ -n "$uuid" ] && [ "$(probe UUID)" != "$(printf %s "$uuid" | lower)" ]; then echo "refusing: $dev no longer has UUID $uuid" >&2; exit 3; fi
sig=$(probe TYPE)
case "$sig" in ''|${[...OVERWRITABLE_FS].join('|')}) ;; *) echo "refusing: $dev holds a $sig signature" >&2; exit 3 ;; esac
holders=$(ls "/sys/class/block/$(basename "$(realpath "$dev")")/holders" 2>/dev/null || true)
if [ -n "$holders" ]; then echo "refusing: $dev is in use by $holders" >&2; exit 3; fi
set -- -q -F -L "$label"
[ -n "$uuid" ] && set -- "$@" -U "$uuid"
wipefs -q -a "$dev"
"mkfs.$fstype" "$@" "$dev"
`;

/**
 * FORMAT_SPARE's arguments. The new filesystem keeps the spare's label (spareFsLabel) and its
 * UUID when it had one, so every profile reference to the slot stays true.
 */
export function formatSpareArgs(spare: HostFacts['spare']): [device: string, label: string, fstype: string, uuid: string, partuuid: string] {
  return [spare.device, spareFsLabel(spare), 'ext4', spare.uuid ?? '', spare.partuuid ?? ''];
}

export async function formatSpare(h: SshHost, profile: Profile, facts: HostFacts): Promise<void> {
  // Leftovers of an earlier attempt (our own mounts under /run/ab-upgrade) are released first.
  await unmount(h, SPARE_MNT);
  await unmount(h, OTHER_MNT);
  await sh(h, 'mkdir -p "$1"', [RUN_DIR]);
  await sh(h, `${lowerPriority(profile.install)}\n${FORMAT_SPARE}`, formatSpareArgs(facts.spare), { timeoutMs: 600_000 });
}
