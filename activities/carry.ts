// Phase 4 (and 7, the final sync): make the new root the same host. Carried files are copied
// verbatim from the running slot; fstab, the account files and /etc/default/grub are
// regenerated; services enabled on the old slot are enabled on the new one where they exist.
// The account files hold password hashes: they travel over SSH only, never into results.
import type { CarryReport, HostFacts } from '../lib/contract.js';
import { mergeAccounts, type AccountFiles } from '../lib/accounts.js';
import { carryList } from '../lib/carry.js';
import { renderFstab } from '../lib/fstab.js';
import { withSavedDefault } from '../lib/grub.js';
import type { Profile } from '../lib/profile.js';
import { fsUuid, mountSlot, readFile, sh, SPARE_MNT } from './host-io.js';
import type { SshHost } from './ssh.js';

// Args: root, whether it must hold a release we installed (1/0), then paths. Prints "C <path>"
// carried, "S <path>\t<reason>" skipped, then "D <sha256>  <file>" digests of every carried
// regular file.
const COPY = `
root=$1; need_release=$2; shift 2
[ "$need_release" = 0 ] || [ -f "$root/.ab-upgrade-release" ] || { echo "no complete release on the spare slot ($root)" >&2; exit 3; }
[ -x "$root/bin/sh" ] || { echo "no system on the spare slot ($root)" >&2; exit 3; }
for p in "$@"; do
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then printf 'S %s\\tabsent on the running slot\\n' "$p"; continue; fi
  rm -rf -- "$root$p"
  mkdir -p -- "$root$(dirname -- "$p")"
  cp -a -- "$p" "$root$p"
  printf 'C %s\\n' "$p"
done
for p in "$@"; do
  [ -e "$p" ] && find "$p" -xdev -type f -exec sha256sum -- {} + | sed 's/^/D /'
done
true
`;

// Replaces account files in place keeping owner and mode of the new release's copies.
const INSTALL_STAGED = `
root=$1; shift
for f in "$@"; do
  dst="$root/etc/$f"; tmp="$root/etc/.$f.ab-upgrade"
  if [ -e "$dst" ]; then chown --reference="$dst" "$tmp"; chmod --reference="$dst" "$tmp"; fi
  mv -f "$tmp" "$dst"
done
`;

// Prints "E <unit>" enabled on the new slot, "S <unit>\\t<reason>" skipped.
const ENABLE_SERVICES = `
root=$1
systemctl list-unit-files --state=enabled --no-legend --no-pager --type=service,socket,timer,path 2>/dev/null \\
  | awk '{print $1}' | grep -v '@\\.' | while read -r u; do
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
  const report: CarryReport = { carried: [], regenerated: [], skipped: [], usersMerged: [], servicesEnabled: [], digests: {} };

  for (const line of (await sh(h, COPY, [SPARE_MNT, needRelease ? '1' : '0', ...carryList(profile)], { timeoutMs: 600_000 })).split('\n')) {
    if (line.startsWith('C ')) report.carried.push(line.slice(2));
    else if (line.startsWith('S ')) {
      const [path, reason] = line.slice(2).split('\t');
      report.skipped.push({ path: path!, reason: reason ?? '' });
    } else if (line.startsWith('D ')) {
      const m = /^D ([0-9a-f]{64}) {2}(.*)$/.exec(line);
      if (m) report.digests[m[2]!] = m[1]!;
    }
  }

  const fstab = renderFstab({
    rootUuid: await fsUuid(h, facts.spare.device),
    rootFstype: 'ext4',
    dataUuid: facts.data.uuid,
    dataFstype: facts.data.fstype,
    dataMountPoint: facts.data.mountPoint,
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

  for (const line of (await sh(h, ENABLE_SERVICES, [SPARE_MNT], { timeoutMs: 300_000 })).split('\n')) {
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
  const resynced = Object.keys(now.digests).filter((f) => previous.digests[f] !== now.digests[f]);
  return { ...now, resynced };
}
