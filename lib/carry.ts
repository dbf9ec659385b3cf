// What a new root needs to be the same host. Paths are carried when they exist on the old slot;
// fstab, the account files and /etc/default/grub are regenerated instead (see activities/carry.ts).
export const DEBIAN_CARRY_DEFAULTS: readonly string[] = [
  '/etc/hostname',
  '/etc/hosts',
  '/etc/machine-id',
  '/var/lib/dbus/machine-id',
  '/etc/ssh/ssh_host_ed25519_key',
  '/etc/ssh/ssh_host_ed25519_key.pub',
  '/etc/ssh/ssh_host_ecdsa_key',
  '/etc/ssh/ssh_host_ecdsa_key.pub',
  '/etc/ssh/ssh_host_rsa_key',
  '/etc/ssh/ssh_host_rsa_key.pub',
  '/etc/ssh/sshd_config.d',
  '/etc/network/interfaces',
  '/etc/network/interfaces.d',
  '/etc/systemd/network',
  '/etc/netplan',
  '/etc/NetworkManager/system-connections',
  '/etc/resolv.conf',
  '/etc/timezone',
  '/etc/localtime',
  '/etc/default/locale',
  '/etc/sudoers.d',
  '/root/.ssh',
  '/etc/default/grub',
];

/** Files we write ourselves on the new slot; never copied verbatim. */
export const REGENERATED = ['/etc/fstab', '/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'] as const;

/**
 * What is carried, in order: the Debian defaults (when on), the profile's files, then `extra`
 * (the local units found on the host), minus excluded and regenerated paths.
 */
export function carryList(profile: { carry: { defaults: boolean; files: string[]; exclude: string[] } }, extra: readonly string[] = []): string[] {
  const wanted = [...(profile.carry.defaults ? DEBIAN_CARRY_DEFAULTS : []), ...profile.carry.files, ...extra];
  // "/etc/nginx/" excludes /etc/nginx itself too, not only what lies below it.
  const excluded = (p: string) =>
    profile.carry.exclude.some((e) => {
      const dir = e.replace(/\/+$/, '');
      return p === dir || p.startsWith(`${dir}/`);
    });
  const regenerated = new Set<string>(REGENERATED);
  return [...new Set(wanted)].filter((p) => !excluded(p) && !regenerated.has(p));
}

/** Where the operator's own units live. */
export const LOCAL_UNIT_DIR = '/etc/systemd/system';

const UNIT_FILE = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|timer|path|target|mount|automount|swap|slice)$/;
// Unit search paths of packages and of systemd itself: a symlink into them is an alias or an
// enablement, which `systemctl enable` on the new slot re-creates from the unit's [Install].
const UNIT_SEARCH_PATHS = ['/lib/systemd/', '/usr/lib/systemd/', '/etc/systemd/', '/run/systemd/', '/usr/local/lib/systemd/'];

/** What the host's listing script printed about the local unit directory (see activities/carry.ts). */
export interface LocalUnitListing {
  /** Regular files directly in the directory or in its drop-in (*.d) directories. */
  files: string[];
  /** Symlinks there: target as written (made absolute) and what it is ('f' file, 'n' /dev/null, '-' other). */
  links: { path: string; target: string; kind: 'f' | 'n' | '-' }[];
  /** Path → owning packages (dpkg -S), for the files and link targets. */
  owners: Map<string, string[]>;
}

/** Parses "F\t<path>", "L\t<path>\t<target>\t<kind>" and "P <pkgs>: <path>" (dpkg -S) lines. */
export function parseLocalUnitListing(out: string): LocalUnitListing {
  const l: LocalUnitListing = { files: [], links: [], owners: new Map() };
  for (const line of out.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'F' && f[1]) l.files.push(f[1]);
    else if (f[0] === 'L' && f[1] && f[2] !== undefined) l.links.push({ path: f[1], target: f[2], kind: f[3] === 'f' ? 'f' : f[3] === 'n' ? 'n' : '-' });
    else if (line.startsWith('P ') && !line.startsWith('P diversion by ')) {
      const m = /^P (.+?): (\/.*)$/.exec(line);
      if (m) l.owners.set(m[2]!, m[1]!.split(/,\s*/));
    }
  }
  return l;
}

export interface LocalUnits {
  /** Paths to carry verbatim: unit files, drop-ins, masks, linked units (and their targets). */
  carry: string[];
  skipped: { path: string; reason: string }[];
}

/**
 * The operator's own units: what no package owns under the local unit directory. Enablement
 * symlinks (*.wants, *.requires) and aliases are not carried: the carry's enable step re-enables
 * on the new slot what was enabled here, once the unit file is there. Masks (links to /dev/null)
 * are carried, so a unit masked here stays masked. A `systemctl link`ed unit (a link to a file
 * outside the unit search paths) is carried as the link plus its target file, unless a package
 * owns the target (the new release provides it, if installed) or it lies on the data partition
 * (mounted at the same place on the new slot); a link whose target is missing is skipped.
 */
export function localUnitCarry(l: LocalUnitListing, dataMountPoint: string, dir = LOCAL_UNIT_DIR): LocalUnits {
  const carry: string[] = [];
  const skipped: LocalUnits['skipped'] = [];
  const data = dataMountPoint.replace(/\/+$/, '');
  const onData = (p: string) => p === data || p.startsWith(`${data}/`);
  const owned = (p: string) => l.owners.has(p);
  // Directly in dir: a unit file; one level down: a drop-in of <unit>.d.
  const where = (p: string): 'unit' | 'dropin' | null => {
    if (!p.startsWith(`${dir}/`)) return null;
    const rest = p.slice(dir.length + 1).split('/');
    if (rest.length === 1) return UNIT_FILE.test(rest[0]!) ? 'unit' : null;
    if (rest.length === 2 && rest[0]!.endsWith('.d') && UNIT_FILE.test(rest[0]!.slice(0, -2))) return 'dropin';
    return null;
  };
  for (const f of l.files) if (where(f) && !owned(f)) carry.push(f);
  for (const k of l.links) {
    const at = where(k.path);
    if (!at || owned(k.path)) continue;
    if (k.kind === 'n') carry.push(k.path);
    else if (at === 'unit' && k.path === `${dir}/default.target`) carry.push(k.path); // systemctl set-default
    else if ([...UNIT_SEARCH_PATHS, `${dir}/`].some((d) => k.target.startsWith(d))) continue;
    else if (k.kind !== 'f') skipped.push({ path: k.path, reason: `linked unit whose target ${k.target} is missing` });
    else {
      carry.push(k.path);
      if (!owned(k.target) && !onData(k.target)) carry.push(k.target);
    }
  }
  return { carry: [...new Set(carry)], skipped };
}

/** Files whose keyed digest differs from the previous carry's (or that are new). */
export function changedFiles(previous: Record<string, string>, now: Record<string, string>): string[] {
  return Object.keys(now).filter((f) => previous[f] !== now[f]);
}
