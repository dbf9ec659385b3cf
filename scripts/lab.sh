#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) and runs the lab: builds (or reuses) the Debian 12
# A/B VM image and the Debian 13 release, starts the Temporal dev server and a worker, boots the
# VM under QEMU and upgrades it 12 → 13, printing the phases, the timeline and the downtime.
# Extra arguments go to `ab-upgrade lab upgrade` (e.g. --layout uefi, --kexec, --keep).
set -euo pipefail
source "$(dirname "$0")/lib/as-root.sh"
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec node bin/ab-upgrade.js lab upgrade "$@"
