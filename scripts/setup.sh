#!/usr/bin/env bash
# Installs everything ab-upgrade's tests and lab need on a fresh Debian 12 machine (as root):
# Debian packages (OpenSSH, QEMU, OVMF, debootstrap, partitioning and filesystem tools, GRUB's
# own tools for the GRUB restore tests, minisign for release signatures, chromium for the report's
# headless browser test), the npm dependencies,
# and the Temporal CLI (built once into a machine-wide cache by temporal-dev.sh).
set -euo pipefail
source "$(dirname "$0")/lib/as-root.sh"
cd "$(dirname "$0")/.."

PKGS=(openssh-server openssh-client qemu-system-x86 qemu-utils ovmf debootstrap fdisk parted
      dosfstools mtools e2fsprogs zstd socat cpio util-linux ca-certificates git grub-common minisign
      chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# sshd (started by the tests on loopback ports) needs its privilege separation directory.
mkdir -p /run/sshd

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

./temporal-dev.sh ensure >/dev/null
echo "setup: ok (temporal: $(./temporal-dev.sh ensure))"
