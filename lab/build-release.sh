#!/usr/bin/env bash
# Build the lab's Debian 13 (trixie) release image: a root filesystem tarball that the runbook
# unpacks onto the spare slot (profile release.source = image).
#
#   lab/build-release.sh            -> prints the output directory on stdout (last line)
#
# Output: ${XDG_CACHE_HOME:-~/.cache}/ab-upgrade/lab/release-trixie-<recipe hash>/
#   trixie.tar.zst (+ .sha256, .minisig)          bootable release
#   trixie-broken.tar.zst (+ .sha256, .minisig)   same, but every boot of it hangs in the initramfs
#   lab-release.pub, lab-release.key              the lab's minisign key pair (unencrypted: lab only)
#   release.json                                  versions, sizes, sha256s, signing key id
#   .complete                                     written last
# Both tarballs are signed with a minisign key generated for this build (-G -W: no password),
# so the lab's profiles name a signature and a public key and every lab install verifies them.
# The tarballs are made with `tar --numeric-owner --xattrs --xattrs-include='*' --acls` of the
# root directory ("./..."); unpack them as root with the same flags to keep file capabilities.
#
# Contents: debootstrap minbase trixie (+ trixie-updates/-security) with the cloud kernel,
# systemd-sysv, openssh-server, ifupdown, isc-dhcp-client, dbus, udev, zstd, kexec-tools
# (LOAD_KEXEC=false), sudo, rsync, procps, iproute2, e2fsprogs, util-linux, dosfstools,
# initramfs-tools, grub2-common, grub-pc-bin and grub-efi-amd64-bin (either boot mode can be
# installed from the new slot; no grub-pc/grub-efi-amd64 meta package), /etc/default/grub
# from GRUB's own template. No SSH host keys, empty /etc/fstab, /etc/hostname and
# /etc/machine-id, no apt lists or cached .debs: the runbook carries the host's identity.
#
# The broken variant: an initramfs-tools hook (init-top script, scripts/init-top/ab-lab-broken)
# that loops forever before the root filesystem is mounted, on every boot, like a kernel that
# waits for a root device it cannot find. The initrd in the image is rebuilt with it, and the
# hook stays in /etc/initramfs-tools, so an update-initramfs run on the new slot keeps it
# broken. No panic, so panic=10 does not reboot it: only the runbook's comeback deadline and a
# power reset bring the machine back, and GRUB then boots its saved default (the old slot),
# because grub-reboot's next_entry was consumed when GRUB started the broken entry.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$LAB_DIR/lib/common.sh"

SUITE=trixie
KERNEL_PKG=${AB_LAB_RELEASE_KERNEL:-linux-image-cloud-amd64}
EXTRA="grub2-common grub-pc-bin grub-efi-amd64-bin"

HASH=$(recipe_hash "$LAB_DIR/build-release.sh" "$LAB_DIR/lib/common.sh" "kernel=$KERNEL_PKG")
OUT=$LAB_CACHE/release-$SUITE-${HASH:0:16}
if [ -f "$OUT/.complete" ]; then
  log "reusing $OUT"
  echo "$OUT"
  exit 0
fi

need_root
need_cmds debootstrap zstd tar sha256sum minisign node
mkdir -p "$LAB_CACHE"
exec 9>"$LAB_CACHE/.lock-release-${HASH:0:16}"
flock -w 3600 9 || die "timed out waiting for another build of $OUT"
if [ -f "$OUT/.complete" ]; then log "built meanwhile: $OUT"; echo "$OUT"; exit 0; fi

T0=$(date +%s)
WORK=$(mktemp -d "$LAB_CACHE/.build-release-XXXXXX")
ROOT=$WORK/root
cleanup() {
  local rc=$?
  set +e
  umount_tree "$ROOT"
  if [ "${AB_LAB_KEEP_WORK:-}" = 1 ] && [ $rc -ne 0 ]; then log "keeping $WORK"; else rm -rf "$WORK"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

build_rootfs "$SUITE" "$ROOT" "$KERNEL_PKG" "$EXTRA" ""

for t in grub-install grub-mkconfig update-grub grub-reboot grub-editenv grub-set-default update-initramfs kexec; do
  [ -n "$(find "$ROOT/usr/bin" "$ROOT/usr/sbin" -maxdepth 1 -name "$t" -print -quit)" ] || die "release image lacks $t"
done
[ -d "$ROOT/usr/lib/grub/i386-pc" ] && [ -d "$ROOT/usr/lib/grub/x86_64-efi" ] || die "release image lacks GRUB platform files"
ls "$ROOT"/boot/vmlinuz-* "$ROOT"/boot/initrd.img-* >/dev/null || die "release image has no kernel/initrd"

# What grub-pc / grub-efi-amd64 would install as /etc/default/grub (the runbook rewrites it).
[ -f "$ROOT/etc/default/grub" ] || install -m 644 "$ROOT/usr/share/grub/default/grub" "$ROOT/etc/default/grub"

# No identity: the runbook carries the host's.
rm -f "$ROOT"/etc/ssh/ssh_host_*
: >"$ROOT/etc/fstab"
: >"$ROOT/etc/hostname"
: >"$ROOT/etc/machine-id"
rm -f "$ROOT/var/lib/dbus/machine-id"
: >"$ROOT/etc/resolv.conf"
rm -f "$ROOT/etc/apt/apt.conf.d/90ab-lab"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
rm -rf "$ROOT"/var/log/apt/* "$ROOT"/var/log/dpkg.log "$ROOT"/var/log/alternatives.log "$ROOT"/var/log/bootstrap.log
rm -rf "$ROOT"/tmp/* "$ROOT"/var/tmp/*
[ -z "$(ls -A "$ROOT/etc/ssh/" | grep ssh_host_ || true)" ] || die "host keys left in image"

KERNEL_VERSION=$(basename "$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -n 1)" | sed 's/^vmlinuz-//')
DEBIAN_VERSION=$(cat "$ROOT/etc/debian_version")
GRUB_VERSION=$(LC_ALL=C chroot "$ROOT" dpkg-query -W -f '${Version}' grub2-common)
INSTALLED_BYTES=$(du -sb "$ROOT" | cut -f1)

log "tar.zst of the release"
tar_rootfs "$ROOT" "$WORK/$SUITE.tar.zst" 10
(cd "$WORK" && sha256sum "$SUITE.tar.zst" >"$SUITE.tar.zst.sha256")

# ---- the broken variant ----------------------------------------------------------------------
log "broken variant: initramfs hangs before mounting root"
install -d "$ROOT/etc/initramfs-tools/scripts/init-top"
cat >"$ROOT/etc/initramfs-tools/scripts/init-top/ab-lab-broken" <<'EOF'
#!/bin/sh
# ab-upgrade lab: a deliberately broken release. Hang before the root filesystem is mounted,
# on every boot, like a kernel waiting forever for a root device it cannot find. No panic, so
# panic=N does not help: only the runbook's comeback deadline and a power reset do.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
echo "ab-lab-broken: this release is deliberately broken; hanging before root is mounted" >/dev/kmsg 2>/dev/null || true
echo "ab-lab-broken: this release is deliberately broken; hanging before root is mounted"
while :; do sleep 3600; done
EOF
chmod 755 "$ROOT/etc/initramfs-tools/scripts/init-top/ab-lab-broken"
chroot_mount "$ROOT"
in_chroot "$ROOT" update-initramfs -u -k all >/dev/null 2>&1 || die "update-initramfs failed in the broken variant"
hooked=$(in_chroot "$ROOT" lsinitramfs "/boot/initrd.img-$KERNEL_VERSION" 2>/dev/null | grep -c 'init-top/ab-lab-broken' || true)
umount_tree "$ROOT"
[ "${hooked:-0}" -ge 1 ] || die "the broken hook is not in the rebuilt initrd"
tar_rootfs "$ROOT" "$WORK/$SUITE-broken.tar.zst" 10
(cd "$WORK" && sha256sum "$SUITE-broken.tar.zst" >"$SUITE-broken.tar.zst.sha256")

# ---- signatures -------------------------------------------------------------------------------
log "signing both tarballs with a new lab minisign key"
minisign -G -W -p "$WORK/lab-release.pub" -s "$WORK/lab-release.key" >/dev/null
for f in "$SUITE.tar.zst" "$SUITE-broken.tar.zst"; do
  minisign -S -s "$WORK/lab-release.key" -m "$WORK/$f" -t "ab-upgrade lab release $f, recipe ${HASH:0:16}" >/dev/null
  minisign -V -H -p "$WORK/lab-release.pub" -m "$WORK/$f" -q || die "the signature of $f does not verify"
done
KEY_ID=$(sed -n 's/^untrusted comment: minisign public key //p' "$WORK/lab-release.pub")
[ -n "$KEY_ID" ] || die "no key id in lab-release.pub"

SUITE="$SUITE" HASH="$HASH" KEY_ID="$KEY_ID" KERNEL_VERSION="$KERNEL_VERSION" DEBIAN_VERSION="$DEBIAN_VERSION" \
GRUB_VERSION="$GRUB_VERSION" INSTALLED_BYTES="$INSTALLED_BYTES" KERNEL_PKG="$KERNEL_PKG" \
GOOD_SHA="$(cut -d' ' -f1 "$WORK/$SUITE.tar.zst.sha256")" BROKEN_SHA="$(cut -d' ' -f1 "$WORK/$SUITE-broken.tar.zst.sha256")" \
GOOD_BYTES="$(stat -c %s "$WORK/$SUITE.tar.zst")" BROKEN_BYTES="$(stat -c %s "$WORK/$SUITE-broken.tar.zst")" \
node -e '
const e = process.env;
const j = {
  suite: e.SUITE, recipe: e.HASH, builtAt: new Date().toISOString(),
  os: { id: "debian", versionId: e.DEBIAN_VERSION.split(".")[0], debianVersion: e.DEBIAN_VERSION, codename: e.SUITE },
  kernel: { package: e.KERNEL_PKG, version: e.KERNEL_VERSION },
  grub: { version: e.GRUB_VERSION, platforms: ["i386-pc", "x86_64-efi"] },
  installedBytes: Number(e.INSTALLED_BYTES),
  signing: { tool: "minisign", keyId: e.KEY_ID, publicKey: "lab-release.pub", signatures: [`${e.SUITE}.tar.zst.minisig`, `${e.SUITE}-broken.tar.zst.minisig`] },
  tar: { format: "tar.zst", flags: "--numeric-owner --xattrs --xattrs-include=* --acls", root: "./" },
  images: {
    good: { file: `${e.SUITE}.tar.zst`, sha256: e.GOOD_SHA, bytes: Number(e.GOOD_BYTES) },
    broken: { file: `${e.SUITE}-broken.tar.zst`, sha256: e.BROKEN_SHA, bytes: Number(e.BROKEN_BYTES),
      how: "initramfs init-top script ab-lab-broken loops forever before root is mounted, every boot: only a power reset gets the machine back" },
  },
};
process.stdout.write(JSON.stringify(j, null, 2) + "\n");
' >"$WORK/release.json"

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/$SUITE.tar.zst" "$WORK/$SUITE.tar.zst.sha256" "$WORK/$SUITE.tar.zst.minisig" \
   "$WORK/$SUITE-broken.tar.zst" "$WORK/$SUITE-broken.tar.zst.sha256" "$WORK/$SUITE-broken.tar.zst.minisig" \
   "$WORK/lab-release.pub" "$WORK/lab-release.key" "$WORK/release.json" "$OUT/"
echo "$(($(date +%s) - T0))" >"$OUT/build-seconds"
touch "$OUT/.complete"
for old in "$LAB_CACHE/release-$SUITE"-*; do
  [ "$old" = "$OUT" ] || [ ! -f "$old/.complete" ] || rm -rf "$old" "$LAB_CACHE/.lock-release-${old##*-}"
done
log "built $OUT in $(cat "$OUT/build-seconds") s: $(du -h "$OUT/$SUITE.tar.zst" | cut -f1) (broken $(du -h "$OUT/$SUITE-broken.tar.zst" | cut -f1))"
echo "$OUT"
