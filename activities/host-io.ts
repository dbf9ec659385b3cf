// Small shared verbs over one SSH connection: read and write files, mount a slot, run a script
// and get its stdout. Every profile-derived string reaches the host as a quoted argument.
import type { Profile } from '../lib/profile.js';
import type { SlotFacts } from '../lib/contract.js';
import { OWN_MOUNTS } from '../lib/layout.js';
import { keepAlive } from './progress.js';
import { SshHost, targetFromProfile, withHost, type ExecOptions } from './ssh.js';

/** Where we mount other slots on the host. /run is a tmpfs: nothing of ours survives a reboot. */
export const RUN_DIR = OWN_MOUNTS;
export const SPARE_MNT = `${RUN_DIR}/spare`;
export const OTHER_MNT = `${RUN_DIR}/other`;

/**
 * Runs `fn` over the profile's pooled connection, heartbeating while it runs: every activity
 * that reaches the host this way can carry a heartbeat timeout (workflows/activity-options.ts).
 */
export function onHost<T>(profile: Profile, fn: (h: SshHost) => Promise<T>): Promise<T> {
  return keepAlive(() => withHost(targetFromProfile(profile), fn));
}

/** Runs trusted script text with quoted positional args; returns stdout (throws on non-zero exit). */
export async function sh(h: SshHost, body: string, args: string[] = [], opts: ExecOptions = {}): Promise<string> {
  const r = await h.script(`set -eu\n${body}`, args, { timeoutMs: 120_000, ...opts });
  return r.stdout;
}

export async function readFile(h: SshHost, path: string): Promise<string | null> {
  const out = await sh(h, 'if [ -f "$1" ]; then printf Y; cat -- "$1"; else printf N; fi', [path]);
  return out.startsWith('Y') ? out.slice(1) : null;
}

export async function writeFile(h: SshHost, path: string, content: string, mode = '0644'): Promise<void> {
  await h.upload(path, Buffer.from(content), { mode });
}

/**
 * Mounts a slot's filesystem at `dir` (idempotent: an existing mount of the same device is
 * kept; a different one there is an error).
 */
export async function mountSlot(h: SshHost, slot: Pick<SlotFacts, 'device'>, dir: string, readOnly = false): Promise<void> {
  await sh(
    h,
    `dev=$1; dir=$2; opts=$3
mkdir -p "$dir"
cur=$(findmnt -n -o SOURCE --mountpoint "$dir" || true)
if [ -n "$cur" ]; then
  [ "$(realpath "$cur")" = "$(realpath "$dev")" ] || { echo "$dir already has $cur mounted, expected $dev" >&2; exit 1; }
  exit 0
fi
mount -o "$opts" "$dev" "$dir"`,
    [slot.device, dir, readOnly ? 'ro' : 'rw'],
  );
}

export async function unmount(h: SshHost, dir: string): Promise<void> {
  await sh(h, 'if mountpoint -q "$1"; then umount -R "$1"; fi', [dir]);
}

/** Current filesystem UUID of a device (it changes when the spare is reformatted). */
export async function fsUuid(h: SshHost, device: string): Promise<string> {
  const uuid = (await sh(h, 'blkid -s UUID -o value "$1"', [device])).trim();
  if (!uuid) throw new Error(`${device} has no filesystem UUID`);
  return uuid;
}

/** File names in a slot's /boot (mounted at root). */
export async function listBoot(h: SshHost, root: string): Promise<string[]> {
  const out = await sh(h, 'ls -1 "$1/boot" 2>/dev/null || true', [root]);
  return out.split('\n').filter(Boolean);
}
