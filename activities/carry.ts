// Phase 4 (and 7, the final sync): make the new root the same host. Carried files (and the
// operator's own systemd units) are copied verbatim from the running slot; fstab, the account
// files and /etc/default/grub are regenerated; services enabled on the old slot are enabled on
// the new one where they exist.
// The account files hold password hashes: they travel over SSH only, never into results.
import type { CarryReport, HostFacts } from '../lib/contract.js';
import { mergeAccounts, type AccountFiles } from '../lib/accounts.js';
import { carryList, changedFiles, LOCAL_UNIT_DIR, localUnitCarry, parseLocalUnitListing, type LocalUnits } from '../lib/carry.js';
import { renderFstab } from '../lib/fstab.js';
import { withSavedDefault } from '../lib/grub.js';
import type { Profile } from '../lib/profile.js';
import { fsUuid, mountSlot, readFile, RUN_DIR, sh, SPARE_MNT } from './host-io.js';
import type { SshHost } from './ssh.js';

// Args: new root, whether it must hold a release we installed (1/0), the digest key file, the
// data mount point, then paths. Prints "C <path>" carried, "S <path>\t<reason>" skipped, and
// "D <digest> <file>" for every regular file carried. Each path is written only where its
// parent resolves inside the new root: an absolute symlink there (/var/run -> /run) would
// otherwise make rm/cp act on the running root. The digests are keyed with a random key that
// stays on the host (in /run, gone at the next boot): the final sync can tell which files
// changed, but the workflow history, where the report is kept, learns nothing of their
// contents (the SSH private host keys among them).
export const COPY = `
root=$(realpath -e -- "$1"); need_release=$2; key=$3; data=$4; shift 4
[ "$need_release" = 0 ] || [ -f "$root/.ab-upgrade-release" ] || { echo "no complete release on the spare slot ($root)" >&2; exit 3; }
[ -x "$root/bin/sh" ] || { echo "no system on the spare slot ($root)" >&2; exit 3; }
[ "$root" != / ] || { echo "the new root is the running root" >&2; exit 3; }
if [ ! -s "$key" ]; then
  (umask 077; mkdir -p -- "$(dirname -- "$key")"; od -An -N32 -tx1 /dev/urandom | tr -d ' \\n' > "$key.$$"; mv -f -- "$key.$$" "$key")
fi
skip() { printf 'S %s\\t%s\\n' "$1" "$2"; }
for p in "$@"; do
  case "$p" in
    /*) ;;
    *) skip "$p" "not an absolute path"; continue ;;
  esac
  case "$p" in
    */.|*/./*|*/..|*/../*) skip "$p" "not a plain path"; continue ;;
    /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*|/run|/run/*|/boot|/boot/*) skip "$p" "never carried: the new slot has its own"; continue ;;
  esac
  case "$p" in "$data"|"$data"/*) skip "$p" "on the data partition, which the new slot mounts as it is"; continue ;; esac
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then skip "$p" "absent on the running slot"; continue; fi
  parent=$(realpath -m -- "$root$(dirname -- "$p")")
  case "$parent" in
    "$root"|"$root"/*) ;;
    *) skip "$p" "resolves outside the new slot: $(dirname -- "$p") is $parent there"; continue ;;
  esac
  dst="$parent/$(basename -- "$p")"
  rm -rf -- "$dst"
  mkdir -p -- "$parent"
  cp -a -- "$p" "$dst"
  printf 'C %s\\n' "$p"
  find "$p" -xdev -type f -print | while IFS= read -r f; do
    printf 'D %s %s\\n' "$({ cat -- "$key"; cat -- "$f"; } | sha256sum | cut -d ' ' -f 1)" "$f"
  done
done
true
`;

/** Where the digest key lives on the host (a tmpfs; created by the first carry). */
export const DIGEST_KEY = `${RUN_DIR}/carry-digest.key`;

export type CopyResult = Pick<CarryReport, 'carried' | 'skipped' | 'digests'>;

/** Runs COPY: `paths` from the running slot onto the system mounted at `root`. */
export async function copyPaths(h: SshHost, root: string, needRelease: boolean, dataMountPoint: string, paths: string[], digestKey = DIGEST_KEY): Promise<CopyResult> {
  const r: CopyResult = { carried: [], skipped: [], digests: {} };
  const out = await sh(h, COPY, [root, needRelease ? '1' : '0', digestKey, dataMountPoint.replace(/\/+$/, ''), ...paths], { timeoutMs: 600_000 });
  for (const line of out.split('\n')) {
    if (line.startsWith('C ')) r.carried.push(line.slice(2));
    else if (line.startsWith('S ')) {
      const [path, reason] = line.slice(2).split('\t');
      r.skipped.push({ path: path!, reason: reason ?? '' });
    } else if (line.startsWith('D ')) {
      const m = /^D ([0-9a-f]{64}) (.*)$/.exec(line);
      if (m) r.digests[m[2]!] = m[1]!;
    }
  }
  return r;
}

// A shell function listing the local unit directory ($1): "F\t<path>" regular files directly
// there or in drop-in directories, "L\t<path>\t<target>\t<f|n|->" symlinks (target made
// absolute; f: a regular file, n: /dev/null), then "P <packages>: <path>" for those dpkg owns.
// Enablement links in *.wants/*.requires are not listed: the enable step handles them.
export const LOCAL_UNITS_FN = `
local_units() {
  [ -d "$1" ] || return 0
  lu_list=$(for f in "$1"/* "$1"/*.d/*; do
    if [ -L "$f" ]; then
      t=$(readlink -- "$f")
      case "$t" in /*) ;; *) t=$(readlink -f -- "$f" || true) ;; esac
      if [ "$t" = /dev/null ]; then k=n; elif [ -f "$t" ]; then k=f; else k=-; fi
      printf 'L\\t%s\\t%s\\t%s\\n' "$f" "$t" "$k"
    elif [ -f "$f" ]; then
      printf 'F\\t%s\\n' "$f"
    fi
  done)
  [ -n "$lu_list" ] || return 0
  printf '%s\\n' "$lu_list"
  if command -v dpkg-query >/dev/null 2>&1; then
    printf '%s\\n' "$lu_list" | awk -F '\\t' '{ print $2 } $1 == "L" && $4 == "f" { print $3 }' \\
      | xargs -r -d '\\n' dpkg-query -S 2>/dev/null | sed 's/^/P /' || true
  fi
}
`;

/** The operator's own units on the running slot (see localUnitCarry). */
export async function listLocalUnits(h: SshHost, dataMountPoint: string, dir = LOCAL_UNIT_DIR): Promise<LocalUnits> {
  const out = await sh(h, `${LOCAL_UNITS_FN}\nlocal_units "$1"`, [dir], { timeoutMs: 120_000 });
  return localUnitCarry(parseLocalUnitListing(out), dataMountPoint, dir);
}

// Replaces account files in place keeping owner and mode of the new release's copies.
const INSTALL_STAGED = `
root=$1; shift
for f in "$@"; do
  dst="$root/etc/$f"; tmp="$root/etc/.$f.ab-upgrade"
  if [ -e "$dst" ]; then chown --reference="$dst" "$tmp"; chmod --reference="$dst" "$tmp"; fi
  mv -f "$tmp" "$dst"
done
`;

// Prints "E <unit>" enabled on the new slot, "S <unit>\\t<reason>" skipped. Runs after the
// carry, so the operator's own units are on the new slot by then. list-unit-files names a
// template (getty@.service), not its enabled instances: those come from the enablement links.
// The running slot's list is read offline (--root=/) from its unit files, not asked of systemd
// over D-Bus, which times out on a loaded host; a failed listing fails the carry (retried)
// instead of silently enabling nothing.
export const ENABLE_SERVICES = `
root=$1; units=$2
enabled=$(systemctl --root=/ list-unit-files --state=enabled --no-legend --no-pager --type=service,socket,timer,path) \\
  || { echo "listing the running slot's enabled units failed" >&2; exit 1; }
{
  printf '%s\\n' "$enabled" | awk 'NF {print $1}' | grep -v '@\\.' || true
  for w in "$units"/*.wants/*@* "$units"/*.requires/*@*; do
    if [ -L "$w" ]; then
      case "\${w##*/}" in *@.*) ;; *) printf '%s\\n' "\${w##*/}" ;; esac
    fi
  done
} | sort -u | while read -r u; do
  state=$(systemctl --root="$root" is-enabled "$u" 2>/dev/null || true)
  case "$state" in
    enabled|enabled-runtime|static|alias|indirect|generated) printf 'E %s\\n' "$u" ;;
    disabled) if systemctl --root="$root" enable "$u" >/dev/null 2>&1; then printf 'E %s\\n' "$u"; else printf 'S %s\\tenable failed\\n' "$u"; fi ;;
    masked) printf 'S %s\\tmasked on the new release\\n' "$u" ;;
    *) printf 'S %s\\tnot in the new release\\n' "$u" ;;
  esac
done
`;

const ACCOUNT_FILES = ['passwd', 'group', 'shadow', 'gshadow'] as const;

async function readAccounts(h: SshHost, root: string): Promise<AccountFiles> {
  const [passwd, group, shadow, gshadow] = await Promise.all(ACCOUNT_FILES.map((f) => readFile(h, `${root}/etc/${f}`)));
  return { passwd: passwd ?? '', group: group ?? '', shadow: shadow ?? '', gshadow: gshadow ?? '' };
}

export function carryConfig(h: SshHost, profile: Profile, facts: HostFacts): Promise<CarryReport> {
  return carryOnto(h, profile, facts, true);
}

/**
 * The same carry onto the previous slot before a rollback: it holds the system the host ran
 * before the upgrade (installed by us or not), so no release marker is required.
 */
export function carryBack(h: SshHost, profile: Profile, facts: HostFacts): Promise<CarryReport> {
  return carryOnto(h, profile, facts, false);
}

async function carryOnto(h: SshHost, profile: Profile, facts: HostFacts, needRelease: boolean): Promise<CarryReport> {
  await mountSlot(h, facts.spare, SPARE_MNT);
  const local = profile.carry.defaults ? await listLocalUnits(h, facts.data.mountPoint) : { carry: [], skipped: [] };
  const paths = carryList(profile, local.carry);
  // Before the enable step below: a unit is enabled on the new slot only once its file is there.
  const copied = await copyPaths(h, SPARE_MNT, needRelease, facts.data.mountPoint, paths);
  const carried = new Set(copied.carried);
  const report: CarryReport = {
    carried: copied.carried,
    regenerated: [],
    skipped: [...local.skipped, ...copied.skipped],
    usersMerged: [],
    servicesEnabled: [],
    digests: copied.digests,
    localUnits: local.carry.filter((p) => carried.has(p)),
  };

  const oldRoot = facts.active;
  const fstab = renderFstab({
    rootUuid: await fsUuid(h, facts.spare.device),
    rootFstype: 'ext4',
    dataUuid: facts.data.uuid,
    dataFstype: facts.data.fstype,
    dataMountPoint: facts.data.mountPoint,
    dataRefs: [facts.data.device, profile.data.device],
    oldRootRefs: [
      oldRoot.device,
      ...(oldRoot.uuid ? [`UUID=${oldRoot.uuid}`] : []),
      ...(oldRoot.partuuid ? [`PARTUUID=${oldRoot.partuuid}`] : []),
    ],
    previous: (await readFile(h, '/etc/fstab')) ?? '',
  });
  await h.upload(`${SPARE_MNT}/etc/fstab`, Buffer.from(fstab), { mode: '0644' });
  report.regenerated.push('/etc/fstab');

  const merged = mergeAccounts(await readAccounts(h, ''), await readAccounts(h, SPARE_MNT));
  for (const f of ACCOUNT_FILES) await h.upload(`${SPARE_MNT}/etc/.${f}.ab-upgrade`, Buffer.from(merged[f]), { mode: '0600' });
  await sh(h, INSTALL_STAGED, [SPARE_MNT, ...ACCOUNT_FILES]);
  report.regenerated.push(...ACCOUNT_FILES.map((f) => `/etc/${f}`));
  report.usersMerged = merged.humans;

  // The new slot must keep booting through the saved default, whatever the old file said.
  const grubDefaults = (await readFile(h, `${SPARE_MNT}/etc/default/grub`)) ?? 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX_DEFAULT="quiet"\n';
  await h.upload(`${SPARE_MNT}/etc/default/grub`, Buffer.from(withSavedDefault(grubDefaults)), { mode: '0644' });
  report.regenerated.push('/etc/default/grub');

  for (const line of (await sh(h, ENABLE_SERVICES, [SPARE_MNT, LOCAL_UNIT_DIR], { timeoutMs: 300_000 })).split('\n')) {
    if (line.startsWith('E ')) report.servicesEnabled.push(line.slice(2));
    else if (line.startsWith('S ')) {
      const [unit, reason] = line.slice(2).split('\t');
      report.skipped.push({ path: `unit:${unit}`, reason: reason ?? '' });
    }
  }
  return report;
}

/** Carries again right before the reboot and names the files that changed since `previous`. */
export async function finalSync(h: SshHost, profile: Profile, facts: HostFacts, previous: CarryReport): Promise<CarryReport> {
  const now = await carryConfig(h, profile, facts);
  const resynced = changedFiles(previous.digests, now.digests);
  return { ...now, resynced };
}
