// GRUB and reboots. The slot that is committed and running owns the boot: its /boot/grub is
// where the installed GRUB core looks, and its custom.cfg holds entries for both slots.
// - addBootEntry / removeBootEntry: the trial entry on the owner, with exact backups.
// - trialBoot: grub-reboot (one-time) or kexec; GRUB's default stays on the old slot.
// - commitSlot: the running new slot takes ownership (custom.cfg, update-grub, saved default,
//   then grub-install last, so a crash before that leaves the old owner intact).
import type { BootEntry, HostFacts, SlotName, TrialBootResult } from '../lib/contract.js';
import { otherSlot } from '../lib/contract.js';
import { newestKernel, slotCmdline, slotEntryId, withManagedBlock, withoutManagedBlock, withSavedDefault, type SlotBootSpec } from '../lib/grub.js';
import { parseOsRelease } from '../lib/layout.js';
import type { Profile } from '../lib/profile.js';
import { fsUuid, listBoot, mountSlot, OTHER_MNT, readFile, sh, SPARE_MNT, unmount } from './host-io.js';
import type { SshHost } from './ssh.js';

const slotOf = (facts: HostFacts, s: SlotName) => (facts.active.name === s ? facts.active : facts.spare);

/** Which slot the host is running right now (matched by device path). */
export async function runningSlot(h: SshHost, facts: HostFacts): Promise<SlotName | null> {
  const root = (await sh(h, 'realpath "$(findmnt -n -o SOURCE /)"')).trim();
  for (const s of [facts.active, facts.spare]) {
    const dev = (await sh(h, 'realpath "$1"', [s.device])).trim();
    if (dev === root) return s.name;
  }
  return null;
}

/** Root path under which `slot`'s files are reachable: '' when running it, else a mount. */
async function slotRoot(h: SshHost, facts: HostFacts, slot: SlotName, running: SlotName | null, dir: string, readOnly: boolean) {
  if (running === slot) return '';
  await mountSlot(h, slotOf(facts, slot), dir, readOnly);
  return dir;
}

async function bootSpec(h: SshHost, profile: Profile, facts: HostFacts, slot: SlotName, root: string): Promise<SlotBootSpec | null> {
  const k = newestKernel(await listBoot(h, root || '/'));
  if (!k) return null;
  const os = parseOsRelease((await readFile(h, `${root}/etc/os-release`)) ?? (await readFile(h, `${root}/usr/lib/os-release`)) ?? '');
  const name = (os.PRETTY_NAME ?? 'Linux').replace(/[^A-Za-z0-9 ._:,=/@+()-]/g, '');
  return {
    slot,
    title: `ab-upgrade: slot ${slot} - ${name}`,
    uuid: await fsUuid(h, slotOf(facts, slot).device),
    kernel: k.kernel,
    initrd: k.initrd,
    cmdline: slotCmdline(facts.cmdline, slot, profile.kernelArgs),
  };
}

/** GRUB_DEFAULT=saved in /etc/default/grub (grub-set-default needs it); same rewrite as the carry's. */
async function ensureSavedDefault(h: SshHost): Promise<void> {
  const current = (await readFile(h, '/etc/default/grub')) ?? '';
  const wanted = withSavedDefault(current);
  if (wanted !== current) await h.upload('/etc/default/grub', Buffer.from(wanted), { mode: '0644' });
}

/** Writes custom.cfg atomically after grub-script-check accepts it. */
async function writeCustomCfg(h: SshHost, grubDir: string, content: string): Promise<void> {
  const tmp = `${grubDir}/.custom.cfg.ab-upgrade`;
  await h.upload(tmp, Buffer.from(content), { mode: '0644' });
  await sh(h, 'grub-script-check "$1" && mv -f "$1" "$2"', [tmp, `${grubDir}/custom.cfg`]);
}

/** One backup per inspected boot: addBootEntry writes it, removeBootEntry finds it from the same facts. */
const backupDirFor = (facts: HostFacts) => `/boot/grub/ab-upgrade-backup-${facts.bootId.replace(/[^0-9a-f-]/g, '')}`;

// Saves the owner's GRUB files once per upgrade attempt (a retry must not back up our own
// changes); older backups of finished attempts are dropped. Arguments as RESTORE's (root, backup
// directory). Exported for tests.
export const BACKUP = `
root=$1; dir=$1$2; grub=$1/boot/grub
if [ ! -d "$dir" ]; then
  for old in "$grub"/ab-upgrade-backup-*; do [ "$old" = "$dir" ] || rm -rf -- "$old"; done
  mkdir -p "$dir.tmp"
  for f in custom.cfg grubenv grub.cfg; do [ -f "$grub/$f" ] && cp -a "$grub/$f" "$dir.tmp/$f"; done
  [ -f "$root/etc/default/grub" ] && cp -a "$root/etc/default/grub" "$dir.tmp/default-grub"
  mv "$dir.tmp" "$dir"
fi
`;

export async function addBootEntry(h: SshHost, profile: Profile, facts: HostFacts): Promise<BootEntry> {
  const backupDir = backupDirFor(facts);
  await sh(h, BACKUP, ['', backupDir]);
  await mountSlot(h, facts.spare, SPARE_MNT, true);
  const spare = await bootSpec(h, profile, facts, facts.spare.name, SPARE_MNT);
  if (!spare) throw new Error(`no kernel found in /boot of the spare slot ${facts.spare.device}`);
  const active = await bootSpec(h, profile, facts, facts.active.name, '');
  await writeCustomCfg(h, '/boot/grub', withManagedBlock((await readFile(h, '/boot/grub/custom.cfg')) ?? '', active ? [spare, active] : [spare]));

  let changedGrubDefault = false;
  if (!facts.grub.defaultIsSaved) {
    // grub-set-default at commit needs GRUB_DEFAULT=saved; the exact old files are in the backup.
    await ensureSavedDefault(h);
    await sh(h, 'update-grub 2>&1', [], { timeoutMs: 300_000 });
    changedGrubDefault = true;
  }
  return {
    entryId: slotEntryId(facts.spare.name),
    targetSlot: facts.spare.name,
    title: spare.title,
    kernel: spare.kernel,
    initrd: spare.initrd ?? '',
    cmdline: spare.cmdline,
    previousDefault: facts.grub.savedEntry,
    changedGrubDefault,
    backupDir,
  };
}

// Restores the owner's GRUB files byte for byte from the backup (root = where the owner is
// mounted, '' when running); grubenv too, which GRUB itself rewrote when it consumed the one-time
// entry. Without a backup it still removes our block and the one-time entry. Exported for tests.
export const RESTORE = `
root=$1; dir=$1$2; prev=$3; grub=$1/boot/grub
if [ -d "$dir" ]; then
  if [ -f "$dir/custom.cfg" ]; then cp -a "$dir/custom.cfg" "$grub/custom.cfg"; else rm -f "$grub/custom.cfg"; fi
  [ -f "$dir/grub.cfg" ] && cp -a "$dir/grub.cfg" "$grub/grub.cfg"
  [ -f "$dir/default-grub" ] && cp -a "$dir/default-grub" "$root/etc/default/grub"
fi
if [ -f "$dir/grubenv" ]; then
  cp -a "$dir/grubenv" "$grub/grubenv"
else
  [ -f "$grub/grubenv" ] || grub-editenv "$grub/grubenv" create
  grub-editenv "$grub/grubenv" unset next_entry
  if [ -n "$prev" ]; then grub-editenv "$grub/grubenv" set "saved_entry=$prev"; else grub-editenv "$grub/grubenv" unset saved_entry; fi
fi
`;

export async function removeBootEntry(h: SshHost, _profile: Profile, facts: HostFacts): Promise<void> {
  const running = await runningSlot(h, facts);
  const root = await slotRoot(h, facts, facts.bootOwner, running, OTHER_MNT, false);
  const backupDir = backupDirFor(facts);
  await sh(h, RESTORE, [root, backupDir, facts.grub.savedEntry ?? '']);
  // A backup that had no custom.cfg: make sure our block is gone even if a retry rewrote it.
  const custom = await readFile(h, `${root}/boot/grub/custom.cfg`);
  if (custom !== null && custom.includes('ab-upgrade')) {
    const rest = withoutManagedBlock(custom);
    if (rest.trim()) await writeCustomCfg(h, `${root}/boot/grub`, rest);
    else await sh(h, 'rm -f "$1"', [`${root}/boot/grub/custom.cfg`]);
  }
  await sh(h, 'rm -rf -- "$1"', [`${root}${backupDir}`]);
  if (root) await unmount(h, root);
}

// Issues the reboot one second later from a transient timer unit, so this SSH command returns
// first; returns the host's clock at issue time.
const ISSUE = `
verb=$1; msg=$2
logger -t ab-upgrade -- "$msg" || true
sync
systemd-run --quiet --on-active=1 --timer-property=AccuracySec=100ms systemctl "$verb"
date +%s.%N
`;

export async function issueReboot(h: SshHost, verb: 'reboot' | 'kexec', msg: string): Promise<{ issuedAt: number; hostIssuedAtS: number | null }> {
  const out = await sh(h, ISSUE, [verb, msg]);
  const issuedAt = Date.now();
  const hostNow = Number(out.trim().split('\n').at(-1));
  return { issuedAt, hostIssuedAtS: Number.isFinite(hostNow) ? hostNow + 1 : null };
}

const bootIdOf = async (h: SshHost) => (await sh(h, 'cat /proc/sys/kernel/random/boot_id')).trim();

// Loads the spare's kernel with the spare's own kexec (the old slot need not have kexec-tools).
const KEXEC_LOAD = `
root=$1; kernel=$2; initrd=$3; cmdline=$4
for d in proc sys dev; do mountpoint -q "$root/$d" || mount --bind "/$d" "$root/$d"; done
set -- -l "$kernel" --command-line="$cmdline"
[ -n "$initrd" ] && set -- "$@" --initrd="$initrd"
chroot "$root" kexec -s "$@" || chroot "$root" kexec "$@"
for d in dev sys proc; do umount "$root/$d"; done
[ "$(cat /sys/kernel/kexec_loaded)" = 1 ] || { echo "kexec did not load the kernel" >&2; exit 1; }
`;

export async function trialBoot(h: SshHost, profile: Profile, facts: HostFacts, entry: BootEntry): Promise<TrialBootResult> {
  const bootIdBefore = await bootIdOf(h);
  if (profile.reboot === 'kexec') {
    await mountSlot(h, facts.spare, SPARE_MNT, true);
    const uuid = await fsUuid(h, facts.spare.device);
    await sh(h, KEXEC_LOAD, [SPARE_MNT, entry.kernel, entry.initrd, `root=UUID=${uuid} ro ${entry.cmdline}`]);
    const t = await issueReboot(h, 'kexec', `trial kexec into slot ${entry.targetSlot}`);
    return { mode: 'kexec', bootIdBefore, ...t };
  }
  // One-time entry: any reset before commit lands on the old default.
  await sh(h, 'grub-reboot "$1" && grub-editenv list | grep -qx "next_entry=$1"', [entry.entryId]);
  await unmount(h, SPARE_MNT);
  const t = await issueReboot(h, 'reboot', `trial boot into slot ${entry.targetSlot}`);
  return { mode: 'firmware', bootIdBefore, ...t };
}

/**
 * Points the owning GRUB at `slot` (one-time or as the default) and reboots over SSH.
 * Used by the automatic rollback (host still answers) and by rollbackHost.
 */
export async function rebootToSlot(h: SshHost, profile: Profile, facts: HostFacts, slot: SlotName, oneTime: boolean): Promise<TrialBootResult> {
  const running = await runningSlot(h, facts);
  const owner = facts.bootOwner;
  const root = await slotRoot(h, facts, owner, running, OTHER_MNT, false);
  const custom = (await readFile(h, `${root}/boot/grub/custom.cfg`)) ?? '';
  if (!custom.includes(`--id ${slotEntryId(slot)} `)) {
    // The target may be the owner itself, already reachable at root: a second (read-only) mount
    // of a device mounted read-write is refused.
    const targetRoot = slot === owner ? root : await slotRoot(h, facts, slot, running, SPARE_MNT, true);
    const spec = await bootSpec(h, profile, facts, slot, targetRoot);
    if (!spec) throw new Error(`slot ${slot} has no kernel in /boot; it cannot be booted`);
    await writeCustomCfg(h, `${root}/boot/grub`, withManagedBlock(custom, [spec]));
    if (targetRoot && targetRoot !== root) await unmount(h, targetRoot);
  }
  const env = `${root}/boot/grub/grubenv`;
  await sh(
    h,
    oneTime
      ? '[ -f "$1" ] || grub-editenv "$1" create; grub-editenv "$1" set "next_entry=$2"'
      : '[ -f "$1" ] || grub-editenv "$1" create; grub-editenv "$1" unset next_entry; grub-editenv "$1" set "saved_entry=$2"',
    [env, slotEntryId(slot)],
  );
  if (root) await unmount(h, root);
  const bootIdBefore = await bootIdOf(h);
  const t = await issueReboot(h, 'reboot', `reboot into slot ${slot}${oneTime ? ' (one time)' : ''}`);
  return { mode: 'firmware', bootIdBefore, ...t };
}

const INSTALL_GRUB = `
mode=$1; disk=$2
if [ "$mode" = uefi ]; then
  mountpoint -q /boot/efi || mount /boot/efi
  grub-install --target=x86_64-efi --efi-directory=/boot/efi --bootloader-id=debian --no-nvram 2>&1
  grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram 2>&1
else
  grub-install --target=i386-pc "$disk" 2>&1
fi
`;

/** The running slot becomes the default and the owner of the boot. Idempotent. */
export async function commitSlot(h: SshHost, profile: Profile, facts: HostFacts, slot: SlotName): Promise<void> {
  const running = await runningSlot(h, facts);
  if (running !== slot) throw new CommitRefusedError(`refusing to commit slot ${slot}: the host is running slot ${running ?? 'unknown'}`);
  const other = otherSlot(slot);
  const self = await bootSpec(h, profile, facts, slot, '');
  if (!self) throw new Error(`the running slot ${slot} has no kernel in /boot`);
  await mountSlot(h, slotOf(facts, other), OTHER_MNT, true);
  const back = await bootSpec(h, profile, facts, other, OTHER_MNT);
  await unmount(h, OTHER_MNT);

  await sh(h, 'mkdir -p /boot/grub');
  await writeCustomCfg(h, '/boot/grub', withManagedBlock((await readFile(h, '/boot/grub/custom.cfg')) ?? '', back ? [self, back] : [self]));
  await ensureSavedDefault(h);
  await sh(h, 'update-grub 2>&1 && grep -qs custom.cfg /boot/grub/grub.cfg || { echo "grub.cfg does not source custom.cfg" >&2; exit 1; }', [], { timeoutMs: 300_000 });
  await sh(h, 'g=/boot/grub/grubenv; [ -f $g ] || grub-editenv $g create; grub-editenv $g unset next_entry; grub-editenv $g set "saved_entry=$1"', [slotEntryId(slot)]);
  await sh(h, INSTALL_GRUB, [facts.bootMode, facts.disk], { timeoutMs: 300_000 });
}

export class CommitRefusedError extends Error {
  override name = 'CommitRefusedError';
}
