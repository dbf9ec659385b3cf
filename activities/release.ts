// Phase 3: install the new release onto the spare slot (mounted at SPARE_MNT): debootstrap on
// the host, or stream a rootfs tarball from the controller, verified there first (its minisign
// signature: ./release-image.ts) and hashed again by the host as it arrives (over SSH, or pulled
// by the host: ./receive-image.ts); or an ext4 image written to the spare device as it is
// (./install-image.ts). Idempotent under
// retries: the slot is emptied first, and a marker written last says which release is complete
// there.
import { createHash } from 'node:crypto';
import { INSTALL_LIMIT_MS, type HostFacts, type InstallResult } from '../lib/contract.js';
import { newestKernel } from '../lib/grub.js';
import { parseOsRelease } from '../lib/layout.js';
import { lowerPriority } from '../lib/host-priority.js';
import type { ImageRelease, Profile, ReleaseConfig } from '../lib/profile.js';
import { listBoot, mountSlot, readFile, RUN_DIR, sh, SPARE_MNT } from './host-io.js';
import { cancellationSignal, heartbeat, withHeartbeats } from './progress.js';
import { verifiedStream, verifyImage, type VerifiedImage } from './release-image.js';
import { checkSlotFits, verifyManifest } from './image-manifest.js';
import { afterImageWrite, beforeImageWrite, forgetImageUuid } from './install-image.js';
import { connectForBulk, deliveryOf, receiveImage, receivePulledImage } from './receive-image.js';
import { paced } from './paced-stream.js';
import type { SshHost } from './ssh.js';

const MARKER = '.ab-upgrade-release';

/** Packages every slot needs to boot, be reached and manage GRUB, by boot mode. */
export function basePackages(bootMode: HostFacts['bootMode']): string[] {
  return [
    'linux-image-amd64', 'systemd-sysv', 'udev', 'dbus', 'openssh-server', 'ifupdown', 'isc-dhcp-client',
    'initramfs-tools', 'kexec-tools', 'sudo', 'procps', 'iproute2', 'e2fsprogs', 'zstd', 'grub2-common',
    bootMode === 'uefi' ? 'grub-efi-amd64-bin' : 'grub-pc-bin',
  ];
}

/** A stable identity of the release recipe, stored in the marker: an image is named by its verified digest. */
export function releaseId(release: ReleaseConfig, bootMode: HostFacts['bootMode'], image: Pick<VerifiedImage, 'sha256'> | null): string {
  if (release.source === 'image') {
    if (!image) throw new Error('releaseId: an image release is named by its verified digest');
    return `image:${image.sha256}`;
  }
  const recipe = JSON.stringify([release.suite, release.mirror, release.components, release.packages, basePackages(bootMode)]);
  return `debootstrap:${createHash('sha256').update(recipe).digest('hex').slice(0, 16)}`;
}

// An install from an earlier attempt may still run on the host (debootstrap survives a dropped
// SSH connection): wait for its lock before touching the slot.
const EMPTY_SPARE = `
root=$1; id=$2; marker=$3; lock=$4
flock -w 3600 "$lock" true
if [ -f "$root/$marker" ] && [ "$(cat "$root/$marker")" = "$id" ]; then echo complete; exit 0; fi
find "$root" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
echo empty
`;

// debootstrap from the host's own package if it has one, else from the .deb fetched with the
// host's apt sources into a private directory (installing it would change the active slot,
// which we promise not to do). That directory and apt's lists live on the spare itself: /run is
// a small tmpfs (bookworm's Packages alone is 50 MB), and the spare is ours to fill; it is
// removed once the rootfs is in place. Minimal hosts have no wget, which debootstrap downloads
// with: a stand-in hands its "-O file url" to apt's own downloader (which also honours the
// host's apt proxy settings). --force-check-gpg: debootstrap checks the suite's Release file
// against the Debian archive keyring on the host (and every package by the digests it signs);
// without a keyring it would only warn and install unchecked packages, with this it stops.
const DEBOOTSTRAP = `
root=$1; suite=$2; mirror=$3; include=$4; components=$5; lock=$6
exec 9>"$lock"; flock -w 60 9
work="$root/.ab-upgrade-debootstrap"
mkdir -p "$work"
if command -v debootstrap >/dev/null; then db=debootstrap
else
  if [ ! -x "$work/db/usr/sbin/debootstrap" ]; then
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    set -- -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o Debug::NoLocking=1 \\
      -o Acquire::Languages=none -o Acquire::Retries=3 -o Acquire::http::Timeout=60 -o APT::Sandbox::User=root
    timeout 1800 apt-get "$@" -qq update || { echo "apt-get update failed with the host's sources (needed to fetch debootstrap)" >&2; exit 1; }
    (cd "$work" && timeout 600 apt-get "$@" -qq download debootstrap && dpkg-deb -x debootstrap_*.deb "$work/db")
  fi
  export DEBOOTSTRAP_DIR="$work/db/usr/share/debootstrap"; db="$work/db/usr/sbin/debootstrap"
fi
if ! command -v wget >/dev/null; then
  mkdir -p "$work/bin"
  printf '%s\\n' '#!/bin/sh' 'out=; url=' \\
    'while [ $# -gt 0 ]; do case $1 in -O) out=$2; shift 2;; -*) shift;; *) url=$1; shift;; esac; done' \\
    'exec /usr/lib/apt/apt-helper -o APT::Sandbox::User=root -o Acquire::Retries=3 download-file "$url" "$out"' > "$work/bin/wget"
  chmod +x "$work/bin/wget"; PATH="$work/bin:$PATH"
fi
"$db" --force-check-gpg --variant=minbase --components="$components" --include="$include" "$suite" "$root" "$mirror"
rm -rf "$work"
chroot "$root" apt-get clean
`;

/**
 * The tar and debootstrap paths: into the spare's filesystem, mounted at SPARE_MNT, emptied
 * first unless it holds this release already; the streamed size, or null.
 */
async function installIntoSpare(h: SshHost, profile: Profile, facts: HostFacts, image: VerifiedImage | null, id: string, lock: string): Promise<number | null> {
  const r = profile.release;
  await mountSlot(h, facts.spare, SPARE_MNT);
  const state = (await sh(h, `${lowerPriority(profile.install)}\n${EMPTY_SPARE}`, [SPARE_MNT, id, MARKER, lock], { timeoutMs: 3700_000 })).trim();
  let streamed: number | null = null;
  if (state !== 'complete') {
    if (r.source === 'debootstrap') {
      const include = [...basePackages(facts.bootMode), ...r.packages].join(',');
      let lines = 0;
      await withHeartbeats(
        () => ({ phase: 'debootstrap', lines }),
        h.script(`set -eu\n${lowerPriority(profile.install)}\n${DEBOOTSTRAP}`, [SPARE_MNT, r.suite, r.mirror, include, r.components.join(','), lock], {
          timeoutMs: INSTALL_LIMIT_MS,
          signal: cancellationSignal(),
          onStdoutChunk: (c) => (lines += c.toString().split('\n').length - 1),
        }),
      );
    } else {
      streamed = await streamImage(h, profile, r, image!, SPARE_MNT, lock);
    }
    await sh(h, 'sync -f "$1/."; printf %s "$2" > "$1/$3"', [SPARE_MNT, id, MARKER]);
  }
  return streamed;
}

/**
 * Sends the verified image to the host's receiving script into `target`, over a bulk SSH
 * connection or, with release.pull, over the connection the host opens; returns its size.
 */
async function streamImage(h: SshHost, profile: Profile, release: ImageRelease, verified: VerifiedImage, target: string, lock: string): Promise<number> {
  let sent = 0;
  const { maxRate } = profile.install;
  const source = () => {
    const stream = verifiedStream(verified, (n) => (sent += n));
    return maxRate ? paced(stream, maxRate) : stream;
  };
  const { pull, format } = release;
  // startedAt and at (this clock) let `status` tell the rate and the time left.
  const startedAt = Date.now();
  const progress = () => ({ phase: 'stream', via: deliveryOf(release), sent, total: verified.bytes, startedAt, at: Date.now(), ...(maxRate ? { maxRate } : {}) });
  if (pull) {
    await withHeartbeats(progress, receivePulledImage(h, pull, source, format, verified, target, lock, profile.install));
    return verified.bytes;
  }
  const bulk = await connectForBulk(h, profile);
  try {
    await withHeartbeats(progress, receiveImage(bulk, source(), format, verified, target, lock, profile.install));
  } finally {
    bulk.close();
  }
  return verified.bytes;
}

/**
 * An ext4 image: its manifest checked before anything happens on the host, then written to the
 * spare device unless it already holds this release; null when it did (nothing streamed).
 */
async function installExt4Image(h: SshHost, profile: Profile, facts: HostFacts, image: VerifiedImage, id: string, lock: string): Promise<number | null> {
  const release = profile.release as ImageRelease;
  const manifest = await verifyManifest(release, image);
  checkSlotFits(manifest, facts.spare);
  await sh(h, 'mkdir -p "$1"', [RUN_DIR]);
  const before = await beforeImageWrite(h, facts, manifest, id, MARKER, lock);
  if (before.state === 'complete') {
    await mountSlot(h, facts.spare, SPARE_MNT);
    return null;
  }
  const streamed = await streamImage(h, profile, release, image, facts.spare.device, lock);
  await afterImageWrite(h, facts, before.uuid, lock, profile.install);
  await sh(h, 'sync -f "$1/."; printf %s "$2" > "$1/$3"', [SPARE_MNT, id, MARKER]);
  await forgetImageUuid(h);
  return streamed;
}

export async function installRelease(h: SshHost, profile: Profile, facts: HostFacts): Promise<InstallResult> {
  const started = Date.now();
  const r = profile.release;
  // An image is verified on the controller before anything happens on the host.
  let read = 0;
  const image =
    r.source === 'image'
      ? await withHeartbeats(() => ({ phase: 'verify', read }), verifyImage(r, { signal: cancellationSignal(), onBytes: (n) => (read += n) }))
      : null;
  try {
    const id = releaseId(r, facts.bootMode, image);
    const lock = `${RUN_DIR}/install.lock`;
    const streamed = r.source === 'image' && r.format === 'ext4-image' ? await installExt4Image(h, profile, facts, image!, id, lock) : await installIntoSpare(h, profile, facts, image, id, lock);
    heartbeat({ phase: 'done' });
    const os = parseOsRelease((await readFile(h, `${SPARE_MNT}/etc/os-release`)) ?? (await readFile(h, `${SPARE_MNT}/usr/lib/os-release`)) ?? '');
    const kernel = newestKernel(await listBoot(h, SPARE_MNT));
    if (!kernel) throw new Error(`the new release on ${facts.spare.device} has no kernel in /boot`);
    return {
      prettyName: os.PRETTY_NAME ?? 'unknown',
      kernel: kernel.version,
      bytes: streamed,
      ...(streamed !== null && r.source === 'image' ? { via: deliveryOf(r) } : {}),
      durationMs: Date.now() - started,
      ...(image ? { image: { sha256: image.sha256, keyId: image.keyId } } : {}),
    };
  } finally {
    await image?.dispose();
  }
}
