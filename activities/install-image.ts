// Phase 3 for an ext4-image release, on the host: the spare is overwritten with the image as one
// sequential write (the stream itself is activities/release.ts's, like a tarball's), then the
// filesystem is checked, given the spare's UUID and label, grown to the slot and mounted where
// the tar path mounts it, so carry, fstab and GRUB find the slot they expect.
import type { HostFacts } from '../lib/contract.js';
import { spareFsLabel } from '../lib/blockdev.js';
import { lowerPriority, type InstallPriority } from '../lib/host-priority.js';
import { BUILD_LABEL, type ReleaseManifest } from '../lib/release-manifest.js';
import { mountSlot, RUN_DIR, sh, SPARE_MNT } from './host-io.js';
import { withHeartbeats } from './progress.js';
import type { SshHost } from './ssh.js';

/** Remembers, across retries, the UUID prepareSpare's mkfs gave a spare that had none at inspect. */
const UUID_STATE = `${RUN_DIR}/image-uuid`;

// Under the install lock (an earlier attempt may still be writing): a spare already holding this
// release (its marker, seen through a read-only mount without journal replay) is complete.
// Otherwise the UUID the slot must end with: inspect's, else the one the spare has now (from
// prepareSpare), kept in /run so a retry after a partial write gives the same one.
const BEFORE_WRITE = `
dev=$1; mnt=$2; id=$3; marker=$4; lock=$5; want=$6; state=$7; need=$8
exec 9>"$lock"; flock -w 3600 9
mkdir -p "$mnt"
cur=$(findmnt -n -o SOURCE --mountpoint "$mnt" || true)
if [ -n "$cur" ]; then
  [ "$(realpath "$cur")" = "$(realpath "$dev")" ] || { echo "$mnt already has $cur mounted, expected $dev" >&2; exit 1; }
else
  mount -t ext4 -o ro,noload "$dev" "$mnt" 2>/dev/null || true
fi
done=no
if mountpoint -q "$mnt"; then
  [ -f "$mnt/$marker" ] && [ "$(cat "$mnt/$marker")" = "$id" ] && done=yes
  umount "$mnt"
fi
if [ $done = yes ]; then echo complete; exit 0; fi
if findmnt -n -S "$dev" >/dev/null; then echo "refusing: $dev is mounted" >&2; exit 3; fi
size=$(blockdev --getsize64 "$dev")
if [ "$size" -lt "$need" ]; then echo "refusing: $dev has $size bytes, the image needs $need; nothing was written" >&2; exit 3; fi
if [ -z "$want" ]; then
  if [ -f "$state" ] && [ "$(sed -n 1p "$state")" = "$dev" ]; then want=$(sed -n 2p "$state")
  else
    want=$(blkid -p -s UUID -o value "$dev" || true)
    # An image written by an attempt before a reboot (its builder's label): its UUID is the build's, not this slot's.
    [ "$(blkid -p -s LABEL -o value "$dev" || true)" != ${BUILD_LABEL} ] || want=
    [ -n "$want" ] || want=$(cat /proc/sys/kernel/random/uuid)
    printf '%s\\n%s\\n' "$dev" "$want" >"$state"
  fi
fi
echo "write $want"
`;

// e2fsck first (tune2fs and resize2fs want a freshly checked filesystem; exit 1 means it fixed
// something, which a verified image should not need but is not fatal). The UUID is set before the
// growth: with metadata_csum tune2fs rewrites every checksum, fewer on the shrunk filesystem.
/** Args: device, UUID, label, lock (exported for the benchmark, which times it). */
export const AFTER_WRITE = `
dev=$1; uuid=$2; label=$3; lock=$4
exec 9>"$lock"; flock -w 60 9
rc=0; timeout 1800 e2fsck -fy "$dev" >&2 || rc=$?
[ "$rc" -le 1 ] || { echo "e2fsck of the written image failed (exit $rc)" >&2; exit 1; }
tune2fs -U "$uuid" -L "$label" "$dev" >&2
timeout 1800 resize2fs "$dev" >&2
`;

export type BeforeWrite = { state: 'complete' } | { state: 'write'; uuid: string };

/** Whether the spare already holds this release; else the UUID it must end with, after checking it can take the image. */
export async function beforeImageWrite(h: SshHost, facts: HostFacts, manifest: ReleaseManifest, id: string, marker: string, lock: string): Promise<BeforeWrite> {
  const check = sh(h, BEFORE_WRITE, [facts.spare.device, SPARE_MNT, id, marker, lock, facts.spare.uuid ?? '', UUID_STATE, String(manifest.imageBytes)], { timeoutMs: 3700_000 });
  // It may wait up to an hour for an earlier attempt's lock.
  const out = (await withHeartbeats(() => ({ phase: 'check-spare' }), check)).trim();
  if (out === 'complete') return { state: 'complete' };
  const m = /^write ([0-9A-Fa-f-]{8,64})$/.exec(out);
  if (!m) throw new Error(`checking the spare ${facts.spare.device} before writing the image: unexpected answer ${JSON.stringify(out.slice(0, 200))}`);
  return { state: 'write', uuid: m[1]! };
}

/** After the image was written and its digest checked: fsck, the slot's UUID and label, grown to the slot, mounted at SPARE_MNT. */
export async function afterImageWrite(h: SshHost, facts: HostFacts, uuid: string, lock: string, priority: InstallPriority): Promise<void> {
  await withHeartbeats(() => ({ phase: 'fsck+resize' }), sh(h, `${lowerPriority(priority)}\n${AFTER_WRITE}`, [facts.spare.device, uuid, spareFsLabel(facts.spare), lock], { timeoutMs: 3700_000 }));
  await mountSlot(h, facts.spare, SPARE_MNT);
}

/** Forgets the remembered UUID once the release is marked installed. */
export async function forgetImageUuid(h: SshHost): Promise<void> {
  await sh(h, 'rm -f "$1"', [UUID_STATE]);
}
