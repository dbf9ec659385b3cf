// The pre-flight report of `plan`: every reason this host's upgrade would fail (an inhibitor)
// or may go wrong (a warning), each with its fix, decided from read-only facts gathered in one
// round trip (activities/preflight.ts). Nothing here touches the host.
import { carryList, type LocalUnits } from './carry.js';
import { INSTALL_LIMIT_MS, type PreflightFinding, type PreflightReport } from './contract.js';
import { formatDurationMs } from './duration.js';
import { fstabDisposition, normalMountPoint, parseFstab, type FstabEntry } from './fstab.js';
import { renderMenuEntry, slotCmdline } from './grub.js';
import type { LayoutAssessment } from './layout.js';
import type { Profile } from './profile.js';
import { formatRate } from './rate.js';
import type { ReleaseCheck } from './signature.js';

/** Where a health-checked unit comes from on the running slot. */
export interface UnitOrigin {
  unit: string;
  /** Its unit file ('' when the unit does not exist here, /dev/null when masked). */
  fragment: string;
  /** Packages owning the unit file (dpkg -S); empty when none does. */
  packages: string[];
}

export interface PreflightInput {
  profile: Profile;
  assessment: LayoutAssessment;
  units: UnitOrigin[];
  localUnits: LocalUnits;
  /** The running slot's /etc/fstab. */
  fstab: string;
  /** Installed package → the packages it depends on (dpkg-query), to follow dependencies. */
  depends: Map<string, string[]>;
  /** Which carried paths exist on the running slot. */
  present: Set<string>;
  /** What every debootstrap install includes beyond release.packages. */
  basePackages: string[];
  /** The controller's check of the release (signature or sha256), when it was made. */
  release?: ReleaseCheck;
}

/** "U\t<unit>\t<fragment>\t<pkg, pkg>" lines. */
export function parseUnitOrigins(out: string): UnitOrigin[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('U\t'))
    .map((l) => {
      const [, unit = '', fragment = '', pkgs = ''] = l.split('\t');
      return { unit, fragment, packages: pkgs ? pkgs.split(/,\s*/).filter(Boolean) : [] };
    });
}

/** "<package>\t<Pre-Depends>, <Depends>" lines (dpkg-query -W); alternatives all count. */
export function parseDepends(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const [pkg, deps = ''] = line.split('\t');
    if (!pkg) continue;
    const names = deps
      .split(/[,|]/)
      .map((d) => d.trim().replace(/\s*\(.*\)$/, '').replace(/:[a-z0-9-]+$/, ''))
      .filter(Boolean);
    m.set(pkg, names);
  }
  return m;
}

/** The packages and everything they depend on, as installed here. */
function closure(roots: string[], depends: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  while (todo.length) {
    const p = todo.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    todo.push(...(depends.get(p) ?? []));
  }
  return seen;
}

const KERNEL_NAME = /^\/dev\/(sd[a-z]|vd[a-z]|hd[a-z]|xvd[a-z]|nvme\d|mmcblk\d)/;
const KNOWN_FSTYPES = new Set(
  'ext2 ext3 ext4 xfs btrfs vfat msdos exfat ntfs ntfs3 swap tmpfs ramfs proc sysfs devpts devtmpfs mqueue hugetlbfs securityfs cgroup cgroup2 debugfs tracefs configfs fusectl bpf efivarfs pstore binfmt_misc nfs nfs4 cifs smb3 iso9660 udf auto none overlay squashfs'.split(
    ' ',
  ),
);
const NETWORK_CLIENT: Record<string, string> = { nfs: 'nfs-common', nfs4: 'nfs-common', cifs: 'cifs-utils', smb3: 'cifs-utils' };

const under = (p: string, dir: string) => {
  const d = normalMountPoint(dir);
  return d === '/' || p === d || p.startsWith(`${d}/`);
};

export function preflight(i: PreflightInput): PreflightReport {
  const { profile, assessment: a } = i;
  const findings: PreflightFinding[] = [];
  const inhibit = (what: string, fix: string) => findings.push({ severity: 'inhibitor', what, fix });
  const warn = (what: string, fix: string) => findings.push({ severity: 'warning', what, fix });
  const r = profile.release;
  const data = profile.data.mountPoint;
  const carried = carryList(profile, i.localUnits.carry);
  const isCarried = (p: string) => carried.some((c) => under(p, c));
  const inRelease = r.source === 'debootstrap' ? closure([...r.packages, ...i.basePackages], i.depends) : new Set<string>();
  const imageShips = (what: string, pkg: string) =>
    warn(`${what} needs package ${pkg}, which the image must ship`, `make sure ${r.source === 'image' ? r.url : 'the image'} includes ${pkg}`);

  // (c) what inspect refuses
  if (!a.ok) for (const refusal of a.refusals) inhibit(refusal, 'change the host or the profile as the refusal says (nothing has been written)');

  // (a) every health-checked unit must exist on the new slot
  for (const u of i.units) {
    const what = `health unit ${u.unit}`;
    if (!u.fragment) inhibit(`${what} does not exist on this host`, `install or write it, or remove it from health.units`);
    else if (u.fragment === '/dev/null') inhibit(`${what} is masked on this host`, `unmask it, or remove it from health.units`);
    else if (u.packages.length) {
      const pkgs = u.packages.join(', ');
      if (r.source === 'image') imageShips(`${what} (${u.fragment})`, pkgs);
      else if (!u.packages.some((p) => inRelease.has(p)))
        inhibit(`${what} comes from package ${pkgs}, which is not in release.packages (nor pulled in by them)`, `add ${u.packages[0]} to release.packages`);
    } else if (!u.fragment.startsWith('/run/systemd/') && !isCarried(u.fragment) && !under(u.fragment, data))
      inhibit(
        `${what} (${u.fragment}) belongs to no package and is not carried`,
        profile.carry.defaults && u.fragment.startsWith('/etc/systemd/system/')
          ? `remove ${u.fragment} from carry.exclude`
          : `add ${u.fragment} to carry.files${profile.carry.defaults ? '' : ' (or set carry.defaults: true)'}`,
      );
  }

  // (b) every fstab line, and how the new slot's fstab carries it
  const facts = a.ok ? a.facts : null;
  const dispositionInput = {
    dataMountPoint: data,
    dataUuid: facts?.data.uuid ?? '',
    dataRefs: [profile.data.device, ...(facts ? [facts.data.device] : [])],
    oldRootRefs: facts
      ? [facts.active.device, ...(facts.active.uuid ? [`UUID=${facts.active.uuid}`] : []), ...(facts.active.partuuid ? [`PARTUUID=${facts.active.partuuid}`] : [])]
      : [],
  };
  const fstab: PreflightReport['fstab'] = [];
  for (const e of parseFstab(i.fstab)) fstab.push({ line: e.line, carried: fstabLine(e, fstabDisposition(e, dispositionInput)) });

  function fstabLine(e: FstabEntry, d: ReturnType<typeof fstabDisposition>): string {
    if (d === 'root') return "replaced: the new slot's root, by UUID";
    if (d === 'data') return 'replaced: the data partition by UUID, with these options';
    if (d === 'old-root-device') return 'dropped: it names the old root slot';
    const line = `fstab line "${e.line}"`;
    const options = e.options.split(',');
    if (KERNEL_NAME.test(e.spec))
      warn(`${line} names ${e.spec} by its kernel name, which is not stable across boots`, `name it by UUID= or LABEL= (blkid ${e.spec})`);
    if (options.includes('bind') || options.includes('rbind')) {
      if (under(e.spec, data)) return 'kept: a bind mount from the data partition';
      if (isCarried(e.spec)) return 'kept: a bind mount whose source is carried';
      warn(`${line} binds ${e.spec} from the root slot: it must exist on the new slot`, `carry ${e.spec} (carry.files) or move it to the data partition`);
      return 'kept: a bind mount (source on the root slot)';
    }
    const types = e.fstype.split(',');
    for (const t of types) {
      const client = NETWORK_CLIENT[t];
      if (client) {
        if (r.source === 'image') imageShips(line, client);
        else if (!inRelease.has(client)) warn(`${line} needs ${client} in the new release`, `add ${client} to release.packages`);
      } else if (!KNOWN_FSTYPES.has(t))
        warn(`${line} has filesystem type ${t}, which ab-upgrade does not know`, `make sure the new release can mount ${t}, or remove the line`);
    }
    if (e.fstype === 'swap') return `kept: swap${KERNEL_NAME.test(e.spec) ? '' : ' by a stable name'}`;
    return 'kept as it is';
  }

  // (d) kernelArgs: the check GRUB rendering applies to the new slot's command line
  try {
    const slot = facts?.spare.name ?? 'b';
    renderMenuEntry({ slot, title: 'ab-upgrade pre-flight', uuid: '00000000-0000-0000-0000-000000000000', kernel: '/boot/vmlinuz', initrd: null, cmdline: slotCmdline(facts?.cmdline ?? '', slot, profile.kernelArgs) });
  } catch (e) {
    inhibit(`the new slot's kernel command line would not render: ${(e as Error).message}`, 'use plain parameters in kernelArgs (and on the running kernel command line)');
  }

  // (e) profile files that are not there
  for (const f of profile.carry.files) if (!i.present.has(f)) warn(`carry.files: ${f} is absent on this host`, `create it, or remove it from carry.files`);

  for (const s of i.localUnits.skipped) warn(`local unit ${s.path}: ${s.reason}`, 'fix or remove the link');

  // (f) the release itself: installRelease verifies it the same way before sending a byte
  const check = i.release;
  if (check?.source === 'image' && !check.verified) {
    inhibit(`the release image cannot be installed: ${check.problem}`, 'sign the image with the key release.publicKey names (minisign -S -s <key> -m <image>), or correct release.url, release.signature, release.publicKey or release.sha256');
  } else if (check?.source === 'image' && !check.signed) {
    warn('release image is not signed (allowUnsigned: true): only its sha256 is checked', 'sign it (minisign -S -s <key> -m <image>) and give release.signature and release.publicKey instead of allowUnsigned');
  }
  // (g) a cap under which the image cannot arrive within one install attempt
  const { maxRate } = profile.install;
  if (check?.source === 'image' && check.verified && maxRate && (check.bytes / maxRate) * 1000 > INSTALL_LIMIT_MS) {
    inhibit(
      `install.maxRate: at ${formatRate(maxRate)} the image (${Math.round(check.bytes / 1e6)} MB) takes ${formatDurationMs((check.bytes / maxRate) * 1000)} to send, longer than an install attempt may run (${formatDurationMs(INSTALL_LIMIT_MS)})`,
      `raise install.maxRate to at least ${formatRate(Math.ceil((check.bytes / INSTALL_LIMIT_MS) * 1000 * 1.25))}, or remove it`,
    );
  }

  return {
    inhibitors: findings.filter((f) => f.severity === 'inhibitor').length,
    warnings: findings.filter((f) => f.severity === 'warning').length,
    findings,
    fstab,
  };
}

export function renderPreflight(r: PreflightReport): string[] {
  return [
    `pre-flight: ${r.inhibitors} inhibitors, ${r.warnings} warnings`,
    ...r.findings.filter((f) => f.severity === 'inhibitor').map((f) => `INHIBITOR ${f.what} — fix: ${f.fix}`),
    ...r.findings.filter((f) => f.severity === 'warning').map((f) => `WARNING ${f.what} — fix: ${f.fix}`),
    ...(r.fstab.length ? ['fstab of the running slot, on the new slot:', ...r.fstab.map((l) => `  ${l.line}  → ${l.carried}`)] : []),
  ];
}
