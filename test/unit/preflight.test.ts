import { describe, expect, it } from 'vitest';
import { localUnitCarry, parseLocalUnitListing } from '../../lib/carry.js';
import type { HostFacts } from '../../lib/contract.js';
import type { LayoutAssessment } from '../../lib/layout.js';
import { parseDepends, parseUnitOrigins, preflight, renderPreflight, type PreflightInput } from '../../lib/preflight.js';
import { parseProfile } from '../../lib/profile.js';

const UUID_A = '5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b';
const BASE = ['linux-image-amd64', 'systemd-sysv', 'udev', 'dbus', 'openssh-server', 'sudo', 'grub-pc-bin'];

const facts = {
  cmdline: `BOOT_IMAGE=/boot/vmlinuz-6.1.0-40-amd64 root=UUID=${UUID_A} ro console=ttyS0,115200n8 quiet`,
  active: { name: 'a', device: '/dev/vda1', partuuid: '6f4c9d2e-01', uuid: UUID_A },
  spare: { name: 'b', device: '/dev/vda2' },
  data: { device: '/dev/vda3', uuid: '3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10', fstype: 'ext4', mountPoint: '/srv/data' },
  bootMode: 'bios',
} as unknown as HostFacts;
const OK: LayoutAssessment = { ok: true, facts, warnings: [] };

// What the gather script prints on a bookworm host running postgresql, nginx and the operator's own app.
const UNITS = parseUnitOrigins(
  [
    'U\tpostgresql@15-main.service\t/lib/systemd/system/postgresql@.service\tpostgresql-common',
    'U\tnginx.service\t/lib/systemd/system/nginx.service\tnginx-common',
    'U\tssh.service\t/lib/systemd/system/ssh.service\topenssh-server',
    'U\tmyapp.service\t/etc/systemd/system/myapp.service\t',
    'U\treports.service\t/opt/reports/reports.service\t',
    'U\tsrv-data.mount\t/run/systemd/generator/srv-data.mount\t',
    'U\tredis-server.service\t\t',
    'U\tcups.service\t/dev/null\t',
  ].join('\n'),
);
const DEPENDS = parseDepends(
  [
    'postgresql-15\tlibc6 (>= 2.34), libpq5 (>= 15~~), postgresql-client-15, postgresql-common (>= 241~), tzdata, ssl-cert',
    'postgresql-common\tadduser, debconf (>= 0.5.6) | debconf-2.0, lsb-base (>= 3.0-3), postgresql-client-common (>= 248)',
    'nginx\t, libc6 (>= 2.34), nginx-common (= 1.22.1-9)',
    'openssh-server\tlibpam-modules (>= 0.72-9), adduser, libaudit1:amd64 (>= 1:2.2.1), openssh-client (= 1:9.2p1-2+deb12u7)',
    'systemd-sysv\tsystemd (= 252.38-1~deb12u1)',
  ].join('\n'),
);
const LOCAL = localUnitCarry(
  parseLocalUnitListing('F\t/etc/systemd/system/myapp.service\nL\t/etc/systemd/system/old.service\t/opt/old/old.service\t-\n'),
  '/srv/data',
);
const FSTAB = `# <file system> <mount point> <type> <options> <dump> <pass>
UUID=${UUID_A} / ext4 errors=remount-ro 0 1
LABEL=data /srv/data ext4 noatime 0 2
UUID=0a1b2c3d-1111-2222-3333-444455556666 none swap sw 0 0
/dev/sdb1 none swap sw 0 0
/dev/sdc1 /mnt/scratch ext4 defaults,nofail 0 2
/srv/data/www /var/www none bind 0 0
/opt/shared /srv/shared none bind 0 0
nas.example.net:/export/backup /mnt/backup nfs4 rw,hard,_netdev 0 0
//files.example.net/share /mnt/share cifs credentials=/etc/cifs.cred,_netdev 0 0
tmpfs /tmp tmpfs mode=1777,size=2G 0 0
pool/archive /mnt/archive zfs defaults 0 0
/dev/vda1 /mnt/old-root ext4 noauto 0 0
`;

function input(over: Record<string, unknown> = {}, i: Partial<PreflightInput> = {}): PreflightInput {
  const profile = parseProfile({
    host: 'db1',
    auth: { agent: true },
    hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie', packages: ['postgresql-15', 'nfs-common'] },
    carry: { files: ['/etc/postgresql', '/etc/nginx'] },
    health: { units: UNITS.map((u) => u.unit) },
    ...over,
  });
  return { profile, assessment: OK, units: UNITS, localUnits: LOCAL, fstab: FSTAB, depends: DEPENDS, present: new Set(['/etc/postgresql']), basePackages: BASE, ...i };
}

const lines = (r: ReturnType<typeof preflight>) => renderPreflight(r);
const has = (r: ReturnType<typeof preflight>, severity: string, re: RegExp) => r.findings.some((f) => f.severity === severity && re.test(`${f.what} — fix: ${f.fix}`));

describe('preflight: health units', () => {
  const r = preflight(input());

  it('a local unit that will be carried, a generated one and packaged ones pulled in are fine', () => {
    expect(r.findings.some((f) => /myapp\.service|srv-data\.mount|ssh\.service|postgresql@15-main/.test(f.what))).toBe(false);
  });

  it('a unit from a package the release will not install is an inhibitor naming the package', () => {
    expect(has(r, 'inhibitor', /^health unit nginx\.service comes from package nginx-common, .* — fix: add nginx-common to release\.packages$/)).toBe(true);
  });

  it('a unit that does not exist, or is masked, is an inhibitor', () => {
    expect(has(r, 'inhibitor', /^health unit redis-server\.service does not exist on this host — fix: install or write it, or remove it from health\.units$/)).toBe(true);
    expect(has(r, 'inhibitor', /^health unit cups\.service is masked/)).toBe(true);
  });

  it('a unit file no package owns and nothing carries is an inhibitor', () => {
    expect(has(r, 'inhibitor', /^health unit reports\.service \(\/opt\/reports\/reports\.service\) belongs to no package and is not carried — fix: add \/opt\/reports\/reports\.service to carry\.files$/)).toBe(true);
    const off = preflight(input({ carry: { defaults: false } }, { localUnits: { carry: [], skipped: [] } }));
    expect(has(off, 'inhibitor', /^health unit myapp\.service .* not carried — fix: add \/etc\/systemd\/system\/myapp\.service to carry\.files \(or set carry\.defaults: true\)$/)).toBe(true);
  });

  it('with an image release, a packaged unit is a warning that the image must ship it', () => {
    const img = preflight(input({ release: { source: 'image', url: 'https://images.example.net/trixie.tar.zst', sha256: 'a'.repeat(64), allowUnsigned: true } }));
    expect(has(img, 'warning', /^health unit nginx\.service .* needs package nginx-common, which the image must ship — fix: make sure https:\/\/images\.example\.net\/trixie\.tar\.zst includes nginx-common$/)).toBe(true);
    expect(has(img, 'inhibitor', /nginx/)).toBe(false);
  });
});

describe('preflight: the release check', () => {
  const signed = { source: 'image', url: '/srv/images/trixie.tar.zst', signature: '/srv/images/trixie.tar.zst.minisig', publicKey: '/etc/ab-upgrade/release.pub' };

  it('a release that does not verify is an inhibitor naming the cause', () => {
    const r = preflight(input({ release: signed }, { release: { source: 'image', signed: true, keyId: 'B9FC5AA62FD91C02', verified: false, problem: 'release image /srv/images/trixie.tar.zst does not match its signature' } }));
    expect(has(r, 'inhibitor', /^the release image cannot be installed: release image \/srv\/images\/trixie\.tar\.zst does not match its signature — fix: /)).toBe(true);
  });

  it('a verified signature adds nothing; an image allowed unsigned is a warning', () => {
    const verified = { source: 'image', signed: true, keyId: 'B9FC5AA62FD91C02', verified: true, sha256: 'a'.repeat(64), bytes: 1, trustedComment: null } as const;
    expect(preflight(input({ release: signed }, { release: verified })).findings.filter((f) => /release/.test(f.what))).toEqual([]);
    const unsigned = preflight(input({ release: { source: 'image', url: '/srv/i.tar', sha256: 'a'.repeat(64), allowUnsigned: true } }, { release: { ...verified, signed: false, keyId: null } }));
    expect(has(unsigned, 'warning', /^release image is not signed \(allowUnsigned: true\): only its sha256 is checked — fix: sign it/)).toBe(true);
  });

  it('install.maxRate under which the image cannot arrive within one install attempt is an inhibitor naming the rate to give', () => {
    const image = { source: 'image', signed: true, keyId: 'B9FC5AA62FD91C02', verified: true, sha256: 'a'.repeat(64), bytes: 1_200_000_000, trustedComment: null } as const;
    const slow = preflight(input({ release: signed, install: { maxRate: '64kB/s' } }, { release: image }));
    expect(has(slow, 'inhibitor', /^install\.maxRate: at 64 kB\/s the image \(1200 MB\) takes 5h12m to send, longer than an install attempt may run \(3h00m\) — fix: raise install\.maxRate to at least 139 kB\/s, or remove it$/)).toBe(true);
    // 1.2 GB at 200 kB/s: 1h40m, within the limit.
    expect(preflight(input({ release: signed, install: { maxRate: '200kB/s' } }, { release: image })).findings.filter((f) => /maxRate/.test(f.what))).toEqual([]);
  });
});

describe('preflight: fstab', () => {
  const r = preflight(input());
  const carried = Object.fromEntries(r.fstab.map((l) => [l.line, l.carried]));

  it('classifies every line and says how the new slot carries it', () => {
    expect(r.fstab).toHaveLength(12);
    expect(carried[`UUID=${UUID_A} / ext4 errors=remount-ro 0 1`]).toBe("replaced: the new slot's root, by UUID");
    expect(carried['LABEL=data /srv/data ext4 noatime 0 2']).toMatch(/^replaced: the data partition/);
    expect(carried['UUID=0a1b2c3d-1111-2222-3333-444455556666 none swap sw 0 0']).toBe('kept: swap by a stable name');
    expect(carried['/srv/data/www /var/www none bind 0 0']).toBe('kept: a bind mount from the data partition');
    expect(carried['/dev/vda1 /mnt/old-root ext4 noauto 0 0']).toBe('dropped: it names the old root slot');
    expect(carried['tmpfs /tmp tmpfs mode=1777,size=2G 0 0']).toBe('kept as it is');
  });

  it('warns about kernel names, root-slot bind sources, network clients not installed and unknown types', () => {
    expect(has(r, 'warning', /"\/dev\/sdb1 none swap sw 0 0" names \/dev\/sdb1 by its kernel name.* — fix: name it by UUID= or LABEL=/)).toBe(true);
    expect(has(r, 'warning', /"\/dev\/sdc1 \/mnt\/scratch/)).toBe(true);
    expect(has(r, 'warning', /binds \/opt\/shared from the root slot: it must exist on the new slot — fix: carry \/opt\/shared \(carry\.files\) or move it to the data partition/)).toBe(true);
    expect(has(r, 'warning', /\/srv\/data\/www/)).toBe(false);
    expect(has(r, 'warning', /cifs .* needs cifs-utils in the new release — fix: add cifs-utils to release\.packages/)).toBe(true);
    expect(has(r, 'warning', /nfs-common/)).toBe(false); // in release.packages
    expect(has(r, 'warning', /filesystem type zfs, which ab-upgrade does not know/)).toBe(true);
    expect(has(r, 'warning', /tmpfs|UUID=0a1b2c3d/)).toBe(false);
  });
});

describe('preflight: layout, kernelArgs, carry files', () => {
  it('includes every layout refusal as an inhibitor', () => {
    const refused: LayoutAssessment = { ok: false, refusals: ['the spare slot b (/dev/vda2) is mounted at /mnt/b; unmount it first'], warnings: [] };
    const r = preflight(input({}, { assessment: refused }));
    expect(r.findings[0]).toEqual({ severity: 'inhibitor', what: 'the spare slot b (/dev/vda2) is mounted at /mnt/b; unmount it first', fix: expect.any(String) });
  });

  it('a kernel command line GRUB rendering would reject is an inhibitor', () => {
    // the running parameters are kept on the new slot: a quoted one cannot be written into a menu entry
    const quoted = { ...facts, cmdline: `${facts.cmdline} dyndbg="file drivers/usb/* +p"` } as HostFacts;
    const r = preflight(input({ kernelArgs: 'console=ttyS0' }, { assessment: { ok: true, facts: quoted, warnings: [] } }));
    expect(has(r, 'inhibitor', /kernel command line would not render: kernel command line contains characters unsafe in a GRUB script/)).toBe(true);
    expect(has(preflight(input({ kernelArgs: 'console=ttyS0 net.ifnames=0' })), 'inhibitor', /kernel command line/)).toBe(false);
  });

  it('carry.files absent on the host are warnings; a broken linked unit too', () => {
    const r = preflight(input());
    expect(has(r, 'warning', /^carry\.files: \/etc\/nginx is absent on this host — fix: create it, or remove it from carry\.files$/)).toBe(true);
    expect(has(r, 'warning', /\/etc\/postgresql/)).toBe(false);
    expect(has(r, 'warning', /local unit \/etc\/systemd\/system\/old\.service: linked unit whose target \/opt\/old\/old\.service is missing/)).toBe(true);
  });

  it('renders the counts, then the inhibitors and warnings with their fixes', () => {
    const r = preflight(input());
    const out = lines(r);
    expect(out[0]).toBe(`pre-flight: ${r.inhibitors} inhibitors, ${r.warnings} warnings`);
    expect(r.inhibitors).toBe(4);
    expect(out).toContain('INHIBITOR health unit redis-server.service does not exist on this host — fix: install or write it, or remove it from health.units');
    expect(out.findIndex((l) => l.startsWith('WARNING'))).toBeGreaterThan(out.map((l) => l.startsWith('INHIBITOR')).lastIndexOf(true));
    expect(out).toContain('  /dev/vda1 /mnt/old-root ext4 noauto 0 0  → dropped: it names the old root slot');
  });

  it('a clean host has nothing to report', () => {
    const r = preflight(input({ carry: {}, health: { units: ['ssh.service'] } }, { units: [UNITS[2]!], fstab: `UUID=${UUID_A} / ext4 defaults 0 1\n`, localUnits: { carry: [], skipped: [] } }));
    expect(r).toMatchObject({ inhibitors: 0, warnings: 0, findings: [] });
    expect(lines(r)[0]).toBe('pre-flight: 0 inhibitors, 0 warnings');
  });
});
