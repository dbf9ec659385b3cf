#!/usr/bin/env bash
# Build the lab's Debian 12 (bookworm) A/B disk image for one boot layout.
#
#   lab/build-image.sh bios|uefi        -> prints the output directory on stdout (last line)
#
# Layout (both):  vda1 slot A  ext4   bookworm, GRUB installed from here
#                 vda2 slot B  ext4   empty filesystem (the spare)
#                 vda3 data    ext4   mounted at /srv/data by fstab
#   uefi only:    vda4 ESP     vfat   mounted at /boot/efi, EFI/BOOT/BOOTX64.EFI
#                 vda5 swap           in fstab by UUID
# bios = MBR + grub-pc (boot code in the MBR gap), filesystem labels ab-slot-a, ab-slot-b,
# ab-data (what `slots: auto` finds). uefi = a host laid out by its operator rather than for
# us: GPT with the operator's own PARTLABELs and filesystem labels (sys-blue, sys-green,
# srv-data; the profile names the slots by them), swap, a bind mount from the data partition
# (/var/www) and a local systemd unit (lab-app.service, with a drop-in) that needs it; GRUB is
# grub-efi-amd64 on the removable path (no NVRAM entry needed).
#
# Output: ${XDG_CACHE_HOME:-~/.cache}/ab-upgrade/lab/<layout>-<recipe hash>/ with disk.raw
# (pristine, sparse), id_ed25519(.pub), host_key.pub, host_key.fingerprint, layout.json and a
# .complete marker written last. The recipe hash covers this script, lib/common.sh and the
# layout, so a changed recipe builds a new directory; a complete one is reused.
# Env: AB_LAB_CACHE (cache root), AB_LAB_MIRROR, AB_LAB_KEEP_WORK=1 (debug).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$LAB_DIR/lib/common.sh"

LAYOUT=${1:-}
case "$LAYOUT" in bios | uefi) ;; *) die "usage: $0 bios|uefi" ;; esac

SUITE=bookworm
KERNEL_PKG=linux-image-cloud-amd64
SLOT_MIB=2560
DATA_MIB=256
ESP_MIB=64
HOSTNAME_=lab-host
DATA_MOUNT=/srv/data
CMDLINE='console=ttyS0,115200 panic=10 net.ifnames=0'
SWAP_MIB=32
if [ "$LAYOUT" = bios ]; then
  LABEL_A=ab-slot-a LABEL_B=ab-slot-b LABEL_D=ab-data
else
  LABEL_A=sys-blue LABEL_B=sys-green LABEL_D=srv-data
fi

HASH=$(recipe_hash "$LAB_DIR/build-image.sh" "$LAB_DIR/lib/common.sh" "layout=$LAYOUT")
OUT=$LAB_CACHE/$LAYOUT-${HASH:0:16}
if [ -f "$OUT/.complete" ]; then
  log "reusing $OUT"
  echo "$OUT"
  exit 0
fi

need_root
need_cmds debootstrap sfdisk partx losetup mkfs.ext4 zstd tar ssh-keygen node findmnt
if [ "$LAYOUT" = uefi ]; then need_cmds mkfs.vfat mcopy fsck.vfat; fi
mkdir -p "$LAB_CACHE/rootfs"

# One builder per output at a time (tests and engineers may start builds concurrently).
exec 9>"$LAB_CACHE/.lock-$LAYOUT-${HASH:0:16}"
flock -w 3600 9 || die "timed out waiting for another build of $OUT"
if [ -f "$OUT/.complete" ]; then log "built meanwhile: $OUT"; echo "$OUT"; exit 0; fi

T0=$(date +%s)
WORK=$(mktemp -d "$LAB_CACHE/.build-$LAYOUT-XXXXXX")
ROOT=$WORK/root
LOOP=
cleanup() {
  local rc=$?
  set +e
  umount_tree "$ROOT"
  umount_tree "$WORK/base"
  if [ -n "$LOOP" ]; then
    partx -d "$LOOP" 2>/dev/null
    losetup -d "$LOOP" 2>/dev/null
  fi
  if [ "${AB_LAB_KEEP_WORK:-}" = 1 ] && [ $rc -ne 0 ]; then
    log "keeping $WORK"
  else
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. bookworm base rootfs (cached as a tar.zst; independent of the layout) ------------
BASE_HASH=$(recipe_hash "$LAB_DIR/lib/common.sh" "suite=$SUITE" "kernel=$KERNEL_PKG" "dl=grub-pc grub-efi-amd64")
BASE_TAR=$LAB_CACHE/rootfs/$SUITE-${BASE_HASH:0:16}.tar.zst
exec 8>"$BASE_TAR.lock"
flock -w 3600 8 || die "timed out waiting for the base rootfs build"
if [ ! -f "$BASE_TAR" ]; then
  log "building base rootfs $BASE_TAR"
  build_rootfs "$SUITE" "$WORK/base" "$KERNEL_PKG" "" "grub-pc grub-efi-amd64"
  tar_rootfs "$WORK/base" "$BASE_TAR" 3
  rm -rf "$WORK/base"
else
  log "reusing base rootfs $BASE_TAR"
fi
flock -u 8

# ---- 2. disk, partitions, filesystems ------------------------------------------------------
DISK=$WORK/disk.raw
if [ "$LAYOUT" = bios ]; then
  DISK_MIB=$((1 + 2 * SLOT_MIB + DATA_MIB + 1))
  truncate -s "${DISK_MIB}M" "$DISK"
  sfdisk -q "$DISK" <<EOF
label: dos
unit: sectors
start=2048, size=${SLOT_MIB}MiB, type=83, bootable
size=${SLOT_MIB}MiB, type=83
size=${DATA_MIB}MiB, type=83
EOF
else
  DISK_MIB=$((1 + 2 * SLOT_MIB + DATA_MIB + ESP_MIB + SWAP_MIB + 1))
  truncate -s "${DISK_MIB}M" "$DISK"
  sfdisk -q "$DISK" <<EOF
label: gpt
unit: sectors
start=2048, size=${SLOT_MIB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="system-1"
size=${SLOT_MIB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="system-2"
size=${DATA_MIB}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="data"
size=${ESP_MIB}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI-system"
size=${SWAP_MIB}MiB, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
EOF
fi

LOOP=$(losetup -f --show "$DISK")
partx -a "$LOOP" # losetup -P does not create the partition nodes on this kind of machine
for i in 1 2 3; do [ -b "${LOOP}p$i" ] || die "no partition node ${LOOP}p$i"; done

# Bookworm's mke2fs (this builder runs on Debian 12), so bookworm's GRUB 2.06 reads the slots.
# Inode tables and journal written now: no ext4lazyinit I/O in the slow emulated guest.
MKE2FS_OPTS=(-q -F -t ext4 -E lazy_itable_init=0,lazy_journal_init=0)
mkfs.ext4 "${MKE2FS_OPTS[@]}" -L "$LABEL_A" "${LOOP}p1"
mkfs.ext4 "${MKE2FS_OPTS[@]}" -L "$LABEL_B" "${LOOP}p2"
mkfs.ext4 "${MKE2FS_OPTS[@]}" -L "$LABEL_D" "${LOOP}p3"
if [ "$LAYOUT" = uefi ]; then
  [ -b "${LOOP}p4" ] && [ -b "${LOOP}p5" ] || die "no partition nodes ${LOOP}p4/p5"
  mkfs.vfat -F 32 -n ESP "${LOOP}p4" >/dev/null
  mkswap -q -L swap0 "${LOOP}p5"
  # The bind mount's source lives on the data partition.
  mkdir -p "$WORK/data"
  mount "${LOOP}p3" "$WORK/data"
  mkdir -p "$WORK/data/www"
  echo "lab-host www" >"$WORK/data/www/index.html"
  umount "$WORK/data"
fi

blk() { blkid -s "$2" -o value "$1" 2>/dev/null || true; }
UUID_A=$(blk "${LOOP}p1" UUID); UUID_B=$(blk "${LOOP}p2" UUID); UUID_D=$(blk "${LOOP}p3" UUID)
PARTUUID_A=$(blk "${LOOP}p1" PARTUUID); PARTUUID_B=$(blk "${LOOP}p2" PARTUUID); PARTUUID_D=$(blk "${LOOP}p3" PARTUUID)
UUID_E=; PARTUUID_E=; UUID_S=
if [ "$LAYOUT" = uefi ]; then UUID_E=$(blk "${LOOP}p4" UUID); PARTUUID_E=$(blk "${LOOP}p4" PARTUUID); UUID_S=$(blk "${LOOP}p5" UUID); fi
[ -n "$UUID_A" ] && [ -n "$UUID_D" ] && [ -n "$PARTUUID_A" ] || die "blkid found no UUIDs"

# ---- 3. slot A: unpack and configure ---------------------------------------------------------
mkdir -p "$ROOT"
mount "${LOOP}p1" "$ROOT"
log "unpacking base rootfs onto slot A"
zstd -q -dc "$BASE_TAR" | tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$ROOT" -xf -

grep -q '^LOAD_KEXEC=false' "$ROOT/etc/default/kexec" || die "bookworm image: LOAD_KEXEC=false not set"
echo "$HOSTNAME_" >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	$HOSTNAME_

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF
mkdir -p "$ROOT$DATA_MOUNT"
{
  echo "# <file system> <mount point> <type> <options> <dump> <pass>"
  echo "UUID=$UUID_A / ext4 errors=remount-ro 0 1"
  echo "UUID=$UUID_D $DATA_MOUNT ext4 defaults 0 2"
  if [ "$LAYOUT" = uefi ]; then
    echo "UUID=$UUID_E /boot/efi vfat umask=0077 0 1"
    echo "UUID=$UUID_S none swap sw 0 0"
    echo "$DATA_MOUNT/www /var/www none bind 0 0"
  fi
} >"$ROOT/etc/fstab"
mkdir -p "$ROOT/boot/efi"
cat >"$ROOT/etc/network/interfaces" <<'EOF'
# ab-upgrade lab: QEMU user networking hands out 10.0.2.15 by DHCP.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
: >"$ROOT/etc/resolv.conf"

# GRUB defaults: saved default (grub-reboot works), short timeout, serial console.
cat >"$ROOT/etc/default/grub" <<EOF
# ab-upgrade lab (see lab/README.md)
GRUB_DEFAULT=saved
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=\`lsb_release -i -s 2> /dev/null || echo Debian\`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$CMDLINE"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF

# Root logs in with the generated key only (Debian's default: PermitRootLogin prohibit-password).
ssh-keygen -q -t ed25519 -N '' -C "ab-upgrade-lab-$LAYOUT" -f "$WORK/id_ed25519"
install -d -m 700 "$ROOT/root/.ssh"
install -m 600 "$WORK/id_ed25519.pub" "$ROOT/root/.ssh/authorized_keys"

chroot_mount "$ROOT"
policy_rc_on "$ROOT"

# The disk's nodes and by-uuid links inside the chroot's private /dev, so grub-probe finds the
# disk and update-grub writes root=UUID=... (no udev on the build machine).
cp -a "$LOOP" "$ROOT/dev/"
for p in "${LOOP}"p*; do cp -a "$p" "$ROOT/dev/"; done
mkdir -p "$ROOT/dev/disk/by-uuid" "$ROOT/dev/disk/by-partuuid" "$ROOT/dev/disk/by-label"
lb=$(basename "$LOOP")
ln -s "../../${lb}p1" "$ROOT/dev/disk/by-uuid/$UUID_A"
ln -s "../../${lb}p2" "$ROOT/dev/disk/by-uuid/$UUID_B"
ln -s "../../${lb}p3" "$ROOT/dev/disk/by-uuid/$UUID_D"
ln -s "../../${lb}p1" "$ROOT/dev/disk/by-partuuid/$PARTUUID_A"
ln -s "../../${lb}p2" "$ROOT/dev/disk/by-partuuid/$PARTUUID_B"
ln -s "../../${lb}p3" "$ROOT/dev/disk/by-partuuid/$PARTUUID_D"
ln -s "../../${lb}p1" "$ROOT/dev/disk/by-label/$LABEL_A"
ln -s "../../${lb}p2" "$ROOT/dev/disk/by-label/$LABEL_B"
ln -s "../../${lb}p3" "$ROOT/dev/disk/by-label/$LABEL_D"
if [ "$LAYOUT" = uefi ]; then
  ln -s "../../${lb}p4" "$ROOT/dev/disk/by-uuid/$UUID_E"
  ln -s "../../${lb}p4" "$ROOT/dev/disk/by-partuuid/$PARTUUID_E"
fi

if [ "$LAYOUT" = bios ]; then
  log "grub-pc: install into the MBR of $LOOP"
  in_chroot "$ROOT" debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect
grub-pc grub-pc/install_devices_empty boolean true
EOF
  in_chroot "$ROOT" apt-get -q -y --no-download install grub-pc >"$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log" >&2; die "installing grub-pc failed"; }
  in_chroot "$ROOT" grub-install --target=i386-pc "/dev/$lb" >"$WORK/grub-install.log" 2>&1 \
    || { cat "$WORK/grub-install.log" >&2; die "grub-install failed"; }
  # A grub-pc upgrade inside the VM reinstalls the boot code to the VM's disk.
  in_chroot "$ROOT" debconf-set-selections <<'EOF'
grub-pc grub-pc/install_devices multiselect /dev/vda
grub-pc grub-pc/install_devices_empty boolean false
EOF
  GRUB_TARGET=i386-pc
else
  log "grub-efi-amd64: removable path, staged in a tmpfs, copied onto the ESP with mtools"
  in_chroot "$ROOT" debconf-set-selections <<'EOF'
grub-efi-amd64 grub2/force_efi_extra_removable boolean true
grub-efi-amd64 grub2/update_nvram boolean false
EOF
  in_chroot "$ROOT" apt-get -q -y --no-download install grub-efi-amd64 >"$WORK/apt.log" 2>&1 \
    || { tail -n 30 "$WORK/apt.log" >&2; die "installing grub-efi-amd64 failed"; }
  # The build machine's kernel has no vfat: a tmpfs whose mount source names the ESP lets
  # grub-probe read the (already formatted) FAT partition while the files land in the tmpfs.
  mount -t tmpfs -o size=64m "/dev/${lb}p4" "$ROOT/boot/efi"
  in_chroot "$ROOT" grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian \
    --removable --no-nvram >"$WORK/grub-install.log" 2>&1 \
    || { cat "$WORK/grub-install.log" >&2; die "grub-install failed"; }
  [ -f "$ROOT/boot/efi/EFI/BOOT/BOOTX64.EFI" ] || die "grub-install wrote no EFI/BOOT/BOOTX64.EFI"
  # mtools on the image file at the ESP's offset (on the block device it warns about geometry).
  export MTOOLS_SKIP_CHECK=1
  ESP_IMG="$DISK@@$(($(partx -g -o START -n 4 "$DISK") * 512))"
  mcopy -s -Q -i "$ESP_IMG" "$ROOT/boot/efi/EFI" ::/
  umount "$ROOT/boot/efi"
  fsck.vfat -n "${LOOP}p4" >/dev/null || die "fsck.vfat found problems on the ESP"
  mdir -i "$ESP_IMG" ::/EFI/BOOT | grep -qi 'BOOTX64' || die "BOOTX64.EFI missing on the ESP"
  GRUB_TARGET=x86_64-efi
fi

in_chroot "$ROOT" update-grub >"$WORK/update-grub.log" 2>&1 || { cat "$WORK/update-grub.log" >&2; die "update-grub failed"; }
grep -q "root=UUID=$UUID_A" "$ROOT/boot/grub/grub.cfg" || die "grub.cfg does not boot root=UUID=$UUID_A"
[ -f "$ROOT/boot/grub/grubenv" ] || in_chroot "$ROOT" grub-editenv /boot/grub/grubenv create

# Fresh SSH host keys named after the lab host, not the build machine.
rm -f "$ROOT"/etc/ssh/ssh_host_*
in_chroot "$ROOT" ssh-keygen -q -t ed25519 -N '' -C "root@$HOSTNAME_" -f /etc/ssh/ssh_host_ed25519_key
in_chroot "$ROOT" ssh-keygen -q -t ecdsa -N '' -C "root@$HOSTNAME_" -f /etc/ssh/ssh_host_ecdsa_key
in_chroot "$ROOT" ssh-keygen -q -t rsa -b 3072 -N '' -C "root@$HOSTNAME_" -f /etc/ssh/ssh_host_rsa_key
cp "$ROOT/etc/ssh/ssh_host_ed25519_key.pub" "$WORK/host_key.pub"
ssh-keygen -lf "$WORK/host_key.pub" | awk '{print $2}' >"$WORK/host_key.fingerprint"

# A machine id like an installed host has (the runbook carries it); no apt timers racing the
# tests inside the slow emulated guest.
rm -f "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"
in_chroot "$ROOT" systemd-machine-id-setup >/dev/null 2>&1
in_chroot "$ROOT" systemctl disable apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true

if [ "$LAYOUT" = uefi ]; then
  # The operator's own service: written by hand, owned by no package, enabled, with a drop-in;
  # it only starts when the bind mount from the data partition is there.
  cat >"$ROOT/etc/systemd/system/lab-app.service" <<'EOF'
[Unit]
Description=lab application (a unit the operator wrote)
RequiresMountsFor=/var/www

[Service]
ExecStartPre=/usr/bin/test -f /var/www/index.html
ExecStart=/bin/sh -c 'echo "$LAB_APP_GREETING"; exec sleep infinity'

[Install]
WantedBy=multi-user.target
EOF
  mkdir -p "$ROOT/etc/systemd/system/lab-app.service.d"
  printf '[Service]\nEnvironment=LAB_APP_GREETING=hello-from-the-drop-in\n' >"$ROOT/etc/systemd/system/lab-app.service.d/greeting.conf"
  in_chroot "$ROOT" systemctl enable lab-app.service >/dev/null 2>&1 || die "enabling lab-app.service failed"
fi
in_chroot "$ROOT" apt-get -q clean
KERNEL_VERSION=$(basename "$(ls "$ROOT"/boot/vmlinuz-* | sort -V | tail -n 1)" | sed 's/^vmlinuz-//')
VERSION_ID=$(. "$ROOT/etc/os-release" && echo "$VERSION_ID")
DEBIAN_VERSION=$(cat "$ROOT/etc/debian_version")
GRUB_VERSION=$(in_chroot "$ROOT" dpkg-query -W -f '${Version}' grub-common)

policy_rc_off "$ROOT"
umount_tree "$ROOT"
e2fsck -f -n "${LOOP}p1" >/dev/null 2>&1 || die "e2fsck found problems on slot A"
SLOTA_FEATURES=$(dumpe2fs -h "${LOOP}p1" 2>/dev/null | sed -n 's/^Filesystem features: *//p')
partx -d "$LOOP"
losetup -d "$LOOP"
LOOP=

# ---- 4. outputs ------------------------------------------------------------------------------
SECTOR_INFO=$(sfdisk -J "$DISK")
LAYOUT="$LAYOUT" HASH="$HASH" DISK_MIB="$DISK_MIB" SECTOR_INFO="$SECTOR_INFO" \
UUID_A="$UUID_A" UUID_B="$UUID_B" UUID_D="$UUID_D" UUID_E="$UUID_E" UUID_S="$UUID_S" \
LABEL_A="$LABEL_A" LABEL_B="$LABEL_B" LABEL_D="$LABEL_D" \
PARTUUID_A="$PARTUUID_A" PARTUUID_B="$PARTUUID_B" PARTUUID_D="$PARTUUID_D" PARTUUID_E="$PARTUUID_E" \
HOSTNAME_="$HOSTNAME_" DATA_MOUNT="$DATA_MOUNT" CMDLINE="$CMDLINE" GRUB_TARGET="$GRUB_TARGET" \
GRUB_VERSION="$GRUB_VERSION" KERNEL_VERSION="$KERNEL_VERSION" VERSION_ID="$VERSION_ID" \
DEBIAN_VERSION="$DEBIAN_VERSION" SUITE="$SUITE" SLOTA_FEATURES="$SLOTA_FEATURES" \
HOST_KEY="$(cat "$WORK/host_key.pub")" HOST_FP="$(cat "$WORK/host_key.fingerprint")" \
node -e '
const e = process.env;
const table = JSON.parse(e.SECTOR_INFO).partitiontable;
const uefi = e.LAYOUT === "uefi";
const part = (n, extra) => {
  const p = table.partitions[n - 1];
  return { device: `/dev/vda${n}`, number: n, startSector: p.start, sizeBytes: p.size * 512, ...extra };
};
const j = {
  layout: e.LAYOUT,
  recipe: e.HASH,
  builtAt: new Date().toISOString(),
  disk: { device: "/dev/vda", partitionTable: table.label, id: table.id, sizeBytes: Number(e.DISK_MIB) * 1048576 },
  bootMode: uefi ? "uefi" : "bios",
  slots: {
    a: part(1, { partuuid: e.PARTUUID_A, uuid: e.UUID_A, label: e.LABEL_A, partlabel: uefi ? "system-1" : null, fstype: "ext4", contents: `debian ${e.VERSION_ID} (${e.SUITE})` }),
    b: part(2, { partuuid: e.PARTUUID_B, uuid: e.UUID_B, label: e.LABEL_B, partlabel: uefi ? "system-2" : null, fstype: "ext4", contents: "empty" }),
  },
  data: part(3, { partuuid: e.PARTUUID_D, uuid: e.UUID_D, label: e.LABEL_D, partlabel: uefi ? "data" : null, fstype: "ext4", mountPoint: e.DATA_MOUNT }),
  esp: uefi ? part(4, { partuuid: e.PARTUUID_E, uuid: e.UUID_E, label: "ESP", partlabel: "EFI-system", fstype: "vfat", mountPoint: "/boot/efi" }) : null,
  swap: uefi ? part(5, { uuid: e.UUID_S, label: "swap0", partlabel: "swap", fstype: "swap" }) : null,
  localUnits: uefi ? ["lab-app.service"] : [],
  os: { id: "debian", versionId: e.VERSION_ID, codename: e.SUITE, debianVersion: e.DEBIAN_VERSION, kernel: e.KERNEL_VERSION },
  grub: { target: e.GRUB_TARGET, version: e.GRUB_VERSION, owner: "a", grubenv: "/boot/grub/grubenv", default: "saved", cmdline: e.CMDLINE },
  ext4Features: e.SLOTA_FEATURES.split(/\s+/).filter(Boolean),
  hostname: e.HOSTNAME_,
  ssh: { user: "root", port: 22, identityFile: "id_ed25519", hostKey: e.HOST_KEY.trim(), hostKeyFingerprint: e.HOST_FP.trim() },
};
process.stdout.write(JSON.stringify(j, null, 2) + "\n");
' >"$WORK/layout.json"

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$DISK" "$WORK/id_ed25519" "$WORK/id_ed25519.pub" "$WORK/host_key.pub" "$WORK/host_key.fingerprint" "$WORK/layout.json" "$OUT/"
chmod 0444 "$OUT/disk.raw"
echo "$(($(date +%s) - T0))" >"$OUT/build-seconds"
touch "$OUT/.complete"
# Older recipes' outputs of this layout and older base tarballs go (a VM still running on an
# old disk.raw keeps its open file).
for old in "$LAB_CACHE/$LAYOUT"-*; do
  [ "$old" = "$OUT" ] || [ ! -f "$old/.complete" ] || rm -rf "$old" "$LAB_CACHE/.lock-$(basename "$old")"
done
for old in "$LAB_CACHE/rootfs/$SUITE"-*.tar.zst; do
  [ "$old" = "$BASE_TAR" ] || rm -f "$old" "$old.lock"
done
log "built $OUT in $(cat "$OUT/build-seconds") s ($(du -h "$OUT/disk.raw" | cut -f1) allocated of ${DISK_MIB} MiB)"
echo "$OUT"
