#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) and runs every test: type check, workflow lint, unit,
# workflow (real Temporal dev server), SSH (real OpenSSH sshd), then the VM end-to-end suite
# (real Debian 12 → 13 under QEMU). AB_UPGRADE_SKIP_E2E=1 skips the VM suite.
set -euo pipefail
source "$(dirname "$0")/lib/as-root.sh"
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm test
if [ "${AB_UPGRADE_SKIP_E2E:-0}" != 1 ]; then npm run test:e2e; fi
