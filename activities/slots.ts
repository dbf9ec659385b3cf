// Phase 2: format the spare slot. The checks are repeated on the host right before mkfs, in
// the same shell, so a spare that became active or got mounted since inspect is never touched.
import type { HostFacts } from '../lib/contract.js';
import { slotLabel } from '../lib/blockdev.js';
import { OTHER_MNT, RUN_DIR, sh, unmount, SPARE_MNT } from './host-io.js';
import type { SshHost } from './ssh.js';

const FORMAT_SPARE = `
dev=$1; label=$2; fstype=$3; uuid=$4
root=$(findmnt -n -o SOURCE /)
if [ "$(realpath "$root")" = "$(realpath "$dev")" ]; then echo "refusing: $dev is the running root" >&2; exit 3; fi
if findmnt -n -S "$dev" >/dev/null; then echo "refusing: $dev is mounted" >&2; exit 3; fi
if grep -qs "^$(realpath "$dev") " /proc/swaps; then echo "refusing: $dev is in use as swap" >&2; exit 3; fi
set -- -q -F -L "$label"
[ -n "$uuid" ] && set -- "$@" -U "$uuid"
wipefs -q -a "$dev"
"mkfs.$fstype" "$@" "$dev"
`;

export async function formatSpare(h: SshHost, facts: HostFacts): Promise<void> {
  // Leftovers of an earlier attempt (our own mounts under /run/ab-upgrade) are released first.
  await unmount(h, SPARE_MNT);
  await unmount(h, OTHER_MNT);
  await sh(h, 'mkdir -p "$1"', [RUN_DIR]);
  // Keep the spare's filesystem UUID when it had one, so profiles naming slots by UUID stay true.
  await sh(h, FORMAT_SPARE, [facts.spare.device, slotLabel(facts.spare.name), 'ext4', facts.spare.uuid ?? ''], {
    timeoutMs: 600_000,
  });
}
