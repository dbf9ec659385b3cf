# Shared helpers for the lab image builders (sourced by build-image.sh and build-release.sh).
# shellcheck shell=bash

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LAB_CACHE=${AB_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ab-upgrade/lab}
LAB_MIRROR=${AB_LAB_MIRROR:-http://deb.debian.org/debian}
LAB_SECURITY_MIRROR=${AB_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (debootstrap, loop devices, mounts)"; }

need_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] || die "missing commands: ${missing[*]} (apt-get install qemu-utils debootstrap fdisk parted mtools dosfstools zstd)"
}

# sha256 of the given files' contents plus extra strings: the recipe hash.
recipe_hash() {
  local files=() extras=() a
  for a in "$@"; do
    if [ -f "$a" ]; then files+=("$a"); else extras+=("$a"); fi
  done
  { for a in "${files[@]}"; do printf '== %s\n' "$(basename "$a")"; cat "$a"; done
    for a in "${extras[@]}"; do printf '== %s\n' "$a"; done; } | sha256sum | cut -c1-64
}

# Mounts made under a root, unmounted deepest first. Never fails.
umount_tree() {
  local root=$1 m
  [ -d "$root" ] || return 0
  # findmnt lists mounts at or below root; unmount in reverse order (deepest first).
  for m in $(findmnt -rn -o TARGET | grep -E "^${root}(/|$)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

# Mount proc/sys/devpts etc. for a chroot. A private tmpfs /dev with the basic nodes (no host
# /dev bind: the chroot must not see or touch the build machine's disks).
chroot_mount() {
  local root=$1
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount -t tmpfs -o mode=0755,size=4m labdev "$root/dev"
  mknod -m 666 "$root/dev/null" c 1 3
  mknod -m 666 "$root/dev/zero" c 1 5
  mknod -m 666 "$root/dev/full" c 1 7
  mknod -m 666 "$root/dev/random" c 1 8
  mknod -m 666 "$root/dev/urandom" c 1 9
  mknod -m 666 "$root/dev/tty" c 5 0
  mknod -m 600 "$root/dev/console" c 5 1
  mkdir -p "$root/dev/pts" "$root/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
  ln -s pts/ptmx "$root/dev/ptmx"
  ln -s /proc/self/fd "$root/dev/fd"
  mount -t tmpfs -o mode=0755,size=16m labrun "$root/run"
  mkdir -p "$root/run/lock"
}

# Keep daemons from starting inside the chroot while packages install.
policy_rc_on() { printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"; }
policy_rc_off() { rm -f "$1/usr/sbin/policy-rc.d"; }

in_chroot() {
  local root=$1; shift
  LC_ALL=C.UTF-8 LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    chroot "$root" "$@"
}

write_sources() {
  local root=$1 suite=$2
  rm -f "$root/etc/apt/sources.list"
  mkdir -p "$root/etc/apt/sources.list.d"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${LAB_MIRROR}
Suites: ${suite} ${suite}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${LAB_SECURITY_MIRROR}
Suites: ${suite}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

# The packages every lab slot (old or new release) needs to boot and be managed.
SLOT_PACKAGES=(systemd-sysv openssh-server ifupdown isc-dhcp-client dbus udev zstd kexec-tools
  sudo rsync procps iproute2 e2fsprogs util-linux dosfstools initramfs-tools)

# build_rootfs SUITE DIR KERNEL_PKG EXTRA_PKGS DOWNLOAD_ONLY_PKGS
# debootstrap (minbase) + suite-updates/security + kernel and the slot packages, daemons
# kept from starting, kexec-tools with LOAD_KEXEC=false. Leaves DIR unmounted.
build_rootfs() {
  local suite=$1 dir=$2 kernel=$3 extra=$4 dlonly=$5
  local include
  include=$(IFS=,; echo "${SLOT_PACKAGES[*]}")
  log "debootstrap $suite (minbase + ${include})"
  mkdir -p "$dir" "$LAB_CACHE/debs/$suite"
  # --cache-dir keeps the .debs between builds; it must be an absolute path.
  debootstrap --variant=minbase --include="$include" --cache-dir="$LAB_CACHE/debs/$suite" \
    "$suite" "$dir" "$LAB_MIRROR" >"$dir.debootstrap.log" 2>&1 \
    || { tail -n 30 "$dir.debootstrap.log" >&2; die "debootstrap $suite failed (log: $dir.debootstrap.log)"; }
  rm -f "$dir.debootstrap.log"
  write_sources "$dir" "$suite"
  policy_rc_on "$dir"
  chroot_mount "$dir"
  # Preseed: kexec-tools must not turn every reboot into a kexec (that skips GRUB/grub-reboot).
  in_chroot "$dir" debconf-set-selections <<'EOF'
kexec-tools kexec-tools/load_kexec boolean false
kexec-tools kexec-tools/use_grub_config boolean false
EOF
  cat >"$dir/etc/apt/apt.conf.d/90ab-lab" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
EOF
  log "apt: ${suite}-updates/security, ${kernel} ${extra}"
  in_chroot "$dir" apt-get -q update >/dev/null
  in_chroot "$dir" apt-get -q -y dist-upgrade >/dev/null
  # shellcheck disable=SC2086
  in_chroot "$dir" apt-get -q -y install "$kernel" $extra >"$dir.apt.log" 2>&1 \
    || { tail -n 40 "$dir.apt.log" >&2; die "apt-get install failed in $suite chroot"; }
  rm -f "$dir.apt.log"
  in_chroot "$dir" apt-get -q clean
  # Packages kept as .debs only (e.g. grub-pc and grub-efi-amd64, which conflict): one apt
  # call each, so a layout can install its own later without the network.
  local p
  for p in $dlonly; do
    in_chroot "$dir" apt-get -q -y --download-only install "$p" >/dev/null
  done
  # bookworm's kexec-tools turns every reboot into a kexec when LOAD_KEXEC=true (init script
  # kexec-load); trixie's dropped the option and the script (kexec only when asked for).
  if grep -q '^LOAD_KEXEC=' "$dir/etc/default/kexec" 2>/dev/null; then
    sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' "$dir/etc/default/kexec"
  elif [ -e "$dir/etc/init.d/kexec-load" ]; then
    die "kexec-tools has a kexec-load script but no LOAD_KEXEC setting"
  fi
  umount_tree "$dir"
  policy_rc_off "$dir"
}

# tar of a root tree, numeric owners, xattrs (file capabilities) kept, API filesystems empty.
tar_rootfs() {
  local dir=$1 out=$2 level=${3:-10}
  tar --numeric-owner --xattrs --xattrs-include='*' --acls -C "$dir" \
    --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' --exclude='./run/*' --exclude='./tmp/*' \
    -cf - . | zstd -q -T0 -"$level" -o "$out.tmp"
  mv "$out.tmp" "$out"
}
