// A plain kexec's load, shared by the downtime benchmark and lab/measure-boot.ts: the running
// kernel and initrd again, with the running command line. "$1" = checks: the file-based load
// first, as the runbook's trial kexec does; no-checks: kexec_load --no-checks, whose purgatory
// jumps without checking the sha256 of the loaded kernel and initrd (kexec_file_load's
// purgatory always checks).
export const KEXEC_SELF = `
set -eu
k=/boot/vmlinuz-$(uname -r); i=/boot/initrd.img-$(uname -r)
if [ "$1" = no-checks ]; then
  kexec --no-checks -l "$k" --initrd="$i" --reuse-cmdline
else
  kexec -s -l "$k" --initrd="$i" --reuse-cmdline 2>/dev/null || kexec -l "$k" --initrd="$i" --reuse-cmdline
fi
[ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "kexec did not load the kernel" >&2; exit 1; }
`;
