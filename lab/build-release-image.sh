#!/usr/bin/env bash
# Build the lab's Debian 13 release in the ext4-image format: the same rootfs as
# build-release.sh's trixie.tar.zst (its tarball is the input), made into a filesystem image by
# the product's own `ab-upgrade release build` and signed with the same lab key.
#
#   lab/build-release-image.sh      -> prints the output directory on stdout (last line)
#
# Output: ${XDG_CACHE_HOME:-~/.cache}/ab-upgrade/lab/release-image-trixie-<recipe hash>/
#   trixie.ext4.zst (+ .sha256, .minisig)               the image, zstd frames of 64 MiB
#   trixie.ext4.zst.manifest.json (+ .minisig)          its manifest
#   lab-release.pub                                     the lab key (a copy of the tar release's)
#   build-seconds, .complete                            .complete written last
# The recipe hash covers the tar release's directory name (itself its recipe hash), this script
# and the builder's code, so a new tarball or a new builder makes a new image; build-release.sh
# itself is not changed by this format, so its cached tarball stays valid.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/common.sh
source "$LAB_DIR/lib/common.sh"
REPO=$(cd "$LAB_DIR/.." && pwd)

SUITE=trixie
REL=$(bash "$LAB_DIR/build-release.sh" | tail -n 1)
[ -f "$REL/.complete" ] || die "build-release.sh gave no release directory"

HASH=$(recipe_hash "$LAB_DIR/build-release-image.sh" "$REPO/client/release-build.ts" "$REPO/lib/release-manifest.ts" "release=$(basename "$REL")")
OUT=$LAB_CACHE/release-image-$SUITE-${HASH:0:16}
if [ -f "$OUT/.complete" ]; then
  log "reusing $OUT"
  echo "$OUT"
  exit 0
fi

need_root
need_cmds mke2fs e2fsck resize2fs dumpe2fs split zstd tar minisign node
exec 9>"$LAB_CACHE/.lock-release-image-${HASH:0:16}"
flock -w 3600 9 || die "timed out waiting for another build of $OUT"
if [ -f "$OUT/.complete" ]; then log "built meanwhile: $OUT"; echo "$OUT"; exit 0; fi

T0=$(date +%s)
WORK=$(mktemp -d "$LAB_CACHE/.build-release-image-XXXXXX")
trap 'rc=$?; rm -rf "$WORK"; exit $rc' EXIT
trap 'exit 130' INT TERM

log "ext4 image of $REL/$SUITE.tar.zst"
node "$REPO/bin/ab-upgrade.js" release build --tarball "$REL/$SUITE.tar.zst" --out "$WORK" --name "$SUITE" --sign-key "$REL/lab-release.key" >&2
for f in "$SUITE.ext4.zst" "$SUITE.ext4.zst.manifest.json"; do
  minisign -V -H -p "$REL/lab-release.pub" -m "$WORK/$f" -q || die "the signature of $f does not verify"
done
(cd "$WORK" && sha256sum "$SUITE.ext4.zst" >"$SUITE.ext4.zst.sha256")
cp "$REL/lab-release.pub" "$WORK/"

rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/$SUITE.ext4.zst" "$WORK/$SUITE.ext4.zst.sha256" "$WORK/$SUITE.ext4.zst.minisig" \
   "$WORK/$SUITE.ext4.zst.manifest.json" "$WORK/$SUITE.ext4.zst.manifest.json.minisig" "$WORK/lab-release.pub" "$OUT/"
echo "$(($(date +%s) - T0))" >"$OUT/build-seconds"
touch "$OUT/.complete"
for old in "$LAB_CACHE/release-image-$SUITE"-*; do
  [ "$old" = "$OUT" ] || [ ! -f "$old/.complete" ] || rm -rf "$old" "$LAB_CACHE/.lock-release-image-${old##*-}"
done
log "built $OUT in $(cat "$OUT/build-seconds") s: $(du -h "$OUT/$SUITE.ext4.zst" | cut -f1)"
echo "$OUT"
