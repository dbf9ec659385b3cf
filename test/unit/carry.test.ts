import { describe, expect, it } from 'vitest';
import { carryConfig, COPY, ENABLE_SERVICES } from '../../activities/carry.js';
import type { SshHost } from '../../activities/ssh.js';
import { carryList, changedFiles, DEBIAN_CARRY_DEFAULTS, localUnitCarry, parseLocalUnitListing, REGENERATED } from '../../lib/carry.js';
import { minimalProfile, labFacts } from '../helpers/unit-fixtures.js';

const carry = (c: Partial<{ defaults: boolean; files: string[]; exclude: string[] }> = {}) =>
  carryList({ carry: { defaults: true, files: [], exclude: [], ...c } });

describe('carryList', () => {
  it('carries the Debian defaults by default, in order', () => {
    expect(carry()).toEqual([...DEBIAN_CARRY_DEFAULTS]);
  });

  it('defaults include the host identity, network config and SSH host keys', () => {
    const list = carry();
    for (const p of [
      '/etc/hostname',
      '/etc/hosts',
      '/etc/machine-id',
      '/etc/ssh/ssh_host_ed25519_key',
      '/etc/ssh/ssh_host_ed25519_key.pub',
      '/etc/ssh/ssh_host_rsa_key',
      '/etc/ssh/ssh_host_ecdsa_key',
      '/etc/network/interfaces',
      '/etc/systemd/network',
      '/root/.ssh',
    ])
      expect(list).toContain(p);
  });

  it('carries only the profile files when defaults are off', () => {
    expect(carry({ defaults: false, files: ['/etc/nginx', '/etc/postgresql/17/main/postgresql.conf'] })).toEqual([
      '/etc/nginx',
      '/etc/postgresql/17/main/postgresql.conf',
    ]);
    expect(carry({ defaults: false })).toEqual([]);
  });

  it('adds the profile files after the defaults', () => {
    const list = carry({ files: ['/etc/nginx', '/etc/cron.d/backup'] });
    expect(list.slice(0, DEBIAN_CARRY_DEFAULTS.length)).toEqual([...DEBIAN_CARRY_DEFAULTS]);
    expect(list.slice(DEBIAN_CARRY_DEFAULTS.length)).toEqual(['/etc/nginx', '/etc/cron.d/backup']);
  });

  it('excludes a directory prefix and everything below it', () => {
    const list = carry({ exclude: ['/etc/ssh'] });
    expect(list.some((p) => p.startsWith('/etc/ssh/'))).toBe(false);
    expect(list).toContain('/etc/hostname');
    expect(list).toHaveLength(DEBIAN_CARRY_DEFAULTS.filter((p) => !p.startsWith('/etc/ssh/')).length);
  });

  it('accepts an exclude written with a trailing slash, excluding the directory itself too', () => {
    const list = carry({ exclude: ['/etc/ssh/'] });
    expect(list.some((p) => p.startsWith('/etc/ssh/'))).toBe(false);
    expect(carry({ defaults: false, files: ['/etc/nginx', '/etc/nginx/nginx.conf', '/etc/nginxx'], exclude: ['/etc/nginx/'] })).toEqual(['/etc/nginxx']);
  });

  it('excludes exact paths without touching siblings that share a name prefix', () => {
    const list = carry({ files: ['/etc/hostname.d', '/etc/hosts.allow'], exclude: ['/etc/hostname', '/etc/hosts'] });
    expect(list).not.toContain('/etc/hostname');
    expect(list).not.toContain('/etc/hosts');
    expect(list).toContain('/etc/hostname.d');
    expect(list).toContain('/etc/hosts.allow');
  });

  it('excludes profile files as well as defaults', () => {
    expect(carry({ defaults: false, files: ['/etc/nginx', '/etc/nginx/sites-enabled/default', '/etc/nginxx'], exclude: ['/etc/nginx'] })).toEqual([
      '/etc/nginxx',
    ]);
  });

  it('never carries the regenerated files, even when asked to', () => {
    expect(REGENERATED).toEqual(['/etc/fstab', '/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow']);
    const list = carry({ files: ['/etc/fstab', '/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow', '/etc/motd'] });
    for (const r of REGENERATED) expect(list).not.toContain(r);
    expect(list).toContain('/etc/motd');
    expect(carry()).not.toEqual(expect.arrayContaining(['/etc/fstab']));
  });

  it('removes duplicates, keeping the first position', () => {
    const list = carry({ files: ['/etc/hostname', '/etc/nginx', '/etc/nginx', '/root/.ssh'] });
    expect(list.filter((p) => p === '/etc/hostname')).toHaveLength(1);
    expect(list.filter((p) => p === '/etc/nginx')).toHaveLength(1);
    expect(list.filter((p) => p === '/root/.ssh')).toHaveLength(1);
    expect(list.indexOf('/etc/hostname')).toBe(DEBIAN_CARRY_DEFAULTS.indexOf('/etc/hostname'));
    expect(new Set(list).size).toBe(list.length);
  });

  it('does not modify the defaults list', () => {
    const before = [...DEBIAN_CARRY_DEFAULTS];
    carry({ files: ['/etc/x'], exclude: ['/etc/ssh'] });
    expect([...DEBIAN_CARRY_DEFAULTS]).toEqual(before);
  });
});

// What the listing script prints on a Debian host whose operator wrote units of their own.
const LISTING = [
  'L\t/etc/systemd/system/dbus-org.freedesktop.timesync1.service\t/lib/systemd/system/systemd-timesyncd.service\tf',
  'L\t/etc/systemd/system/sshd.service\t/lib/systemd/system/ssh.service\tf',
  'L\t/etc/systemd/system/display-manager.service\t/lib/systemd/system/gdm3.service\t-',
  'F\t/etc/systemd/system/myapp.service',
  'F\t/etc/systemd/system/backup.service',
  'F\t/etc/systemd/system/backup.timer',
  'F\t/etc/systemd/system/queue@.service',
  'F\t/etc/systemd/system/vendor.service',
  'F\t/etc/systemd/system/notes.txt',
  'L\t/etc/systemd/system/cups.service\t/dev/null\tn',
  'L\t/etc/systemd/system/default.target\t/lib/systemd/system/multi-user.target\tf',
  'L\t/etc/systemd/system/app.service\t/opt/app/app.service\tf',
  'L\t/etc/systemd/system/reports.service\t/srv/data/units/reports.service\tf',
  'L\t/etc/systemd/system/doc.service\t/usr/share/doc/foo/examples/foo.service\tf',
  'L\t/etc/systemd/system/old.service\t/opt/old/old.service\t-',
  'F\t/etc/systemd/system/myapp.service.d/override.conf',
  'F\t/etc/systemd/system/nginx.service.d/limits.conf',
  'F\t/etc/systemd/system/vendor.service.d/10-vendor.conf',
  'P openssh-server: /lib/systemd/system/ssh.service',
  'P systemd-timesyncd: /lib/systemd/system/systemd-timesyncd.service',
  'P systemd: /lib/systemd/system/multi-user.target',
  'P vendor-agent: /etc/systemd/system/vendor.service',
  'P vendor-agent, vendor-agent-extra: /etc/systemd/system/vendor.service.d/10-vendor.conf',
  'P foo-doc: /usr/share/doc/foo/examples/foo.service',
  'P diversion by dpkg-divert from: /etc/systemd/system/backup.service',
  '',
].join('\n');

describe('local units', () => {
  const l = parseLocalUnitListing(LISTING);
  const r = localUnitCarry(l, '/srv/data');

  it('parses files, links and dpkg -S owners (diversions are not owners)', () => {
    expect(l.files).toHaveLength(9);
    expect(l.links).toContainEqual({ path: '/etc/systemd/system/cups.service', target: '/dev/null', kind: 'n' });
    expect(l.owners.get('/etc/systemd/system/vendor.service.d/10-vendor.conf')).toEqual(['vendor-agent', 'vendor-agent-extra']);
    expect(l.owners.has('/etc/systemd/system/backup.service')).toBe(false);
  });

  it('carries what no package owns: unit files, timers, templates, drop-ins, masks, set-default, linked units', () => {
    expect(r.carry).toEqual([
      '/etc/systemd/system/myapp.service',
      '/etc/systemd/system/backup.service',
      '/etc/systemd/system/backup.timer',
      '/etc/systemd/system/queue@.service',
      '/etc/systemd/system/myapp.service.d/override.conf',
      '/etc/systemd/system/nginx.service.d/limits.conf',
      '/etc/systemd/system/cups.service',
      '/etc/systemd/system/default.target',
      '/etc/systemd/system/app.service',
      '/opt/app/app.service',
      '/etc/systemd/system/reports.service',
      '/etc/systemd/system/doc.service',
    ]);
  });

  it('leaves package files, aliases and non-unit files, and skips a link to a missing file', () => {
    for (const p of ['vendor.service', 'vendor.service.d/10-vendor.conf', 'sshd.service', 'dbus-org.freedesktop.timesync1.service', 'display-manager.service', 'notes.txt'])
      expect(r.carry).not.toContain(`/etc/systemd/system/${p}`);
    // on the data partition or owned by a package: the link alone
    expect(r.carry).not.toContain('/srv/data/units/reports.service');
    expect(r.carry).not.toContain('/usr/share/doc/foo/examples/foo.service');
    expect(r.skipped).toEqual([{ path: '/etc/systemd/system/old.service', reason: 'linked unit whose target /opt/old/old.service is missing' }]);
  });

  it('join the carry list after the profile files, honouring carry.exclude', () => {
    const list = carryList({ carry: { defaults: true, files: ['/etc/nginx'], exclude: ['/etc/systemd/system/backup.timer'] } }, r.carry);
    expect(list.slice(DEBIAN_CARRY_DEFAULTS.length, DEBIAN_CARRY_DEFAULTS.length + 2)).toEqual(['/etc/nginx', '/etc/systemd/system/myapp.service']);
    expect(list).not.toContain('/etc/systemd/system/backup.timer');
  });
});

describe('changedFiles', () => {
  it('names files whose digest changed or that are new', () => {
    expect(changedFiles({ '/a': '1', '/b': '2', '/gone': '3' }, { '/a': '1', '/b': '9', '/new': '4' })).toEqual(['/b', '/new']);
  });
});

describe('carryConfig on a scripted host', () => {
  const facts = labFacts();
  const profile = (defaults: boolean) => minimalProfile({ carry: { defaults } });

  const OLD_FSTAB = [
    '/dev/vda1 / ext4 errors=remount-ro 0 1',
    'LABEL=data /srv/data/ ext4 noatime,nodev 0 2',
    'UUID=5e0f8a7c-2b1d-4e3f-9a6b-1c2d3e4f5a6b /mnt/old-root ext4 noauto 0 0',
    '/dev/vda3 /mnt/data-again ext4 noauto 0 0',
    'UUID=0a1b2c3d-1111-2222-3333-444455556666 none swap sw 0 0',
    '',
  ].join('\n');

  function scriptedHost() {
    const calls: { body: string; args: string[] }[] = [];
    const uploads: Record<string, string> = {};
    const host = {
      script: async (body: string, args: string[] = []) => {
        calls.push({ body, args });
        let stdout = '';
        if (body.includes('local_units()')) stdout = LISTING;
        else if (body.includes(COPY)) stdout = args.slice(4).map((p) => `C ${p}`).join('\n');
        else if (body.includes('blkid')) stdout = '8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a\n';
        else if (body.includes('printf Y; cat')) stdout = args[0] === '/etc/fstab' ? `Y${OLD_FSTAB}` : 'N';
        else if (body.includes(ENABLE_SERVICES)) stdout = 'E myapp.service\nE backup.timer\nE queue@1.service\n';
        return { stdout, stderr: '', code: 0 };
      },
      upload: async (path: string, data: Buffer) => void (uploads[path] = data.toString()),
    };
    return { host: host as unknown as SshHost, calls, uploads };
  }

  it('copies the local units before the enable step, and reports them', async () => {
    const { host, calls } = scriptedHost();
    const report = await carryConfig(host, profile(true), facts);
    const copyAt = calls.findIndex((c) => c.body.includes(COPY));
    const enableAt = calls.findIndex((c) => c.body.includes(ENABLE_SERVICES));
    expect(copyAt).toBeGreaterThan(calls.findIndex((c) => c.body.includes('local_units()')));
    expect(enableAt).toBeGreaterThan(copyAt);
    expect(calls[copyAt]!.args).toEqual(expect.arrayContaining(['/etc/systemd/system/myapp.service', '/etc/systemd/system/backup.timer', '/opt/app/app.service']));
    expect(report.localUnits).toContain('/etc/systemd/system/myapp.service');
    expect(report.localUnits).toContain('/etc/systemd/system/cups.service');
    expect(report.servicesEnabled).toEqual(['myapp.service', 'backup.timer', 'queue@1.service']);
    expect(report.skipped).toContainEqual({ path: '/etc/systemd/system/old.service', reason: 'linked unit whose target /opt/old/old.service is missing' });
  });

  it('carries no local units when the defaults are off', async () => {
    const { host, calls } = scriptedHost();
    const report = await carryConfig(host, profile(false), facts);
    expect(calls.some((c) => c.body.includes('local_units()'))).toBe(false);
    expect(report.localUnits).toEqual([]);
  });

  it('writes an fstab without the old root and data lines however they were named', async () => {
    const { host, uploads } = scriptedHost();
    await carryConfig(host, profile(true), facts);
    const fstab = uploads['/run/ab-upgrade/spare/etc/fstab']!;
    expect(fstab).toBe(
      [
        '# /etc/fstab written by ab-upgrade for this slot',
        'UUID=8d7c6b5a-4f3e-4d2c-9b1a-0f9e8d7c6b5a\t/\text4\terrors=remount-ro\t0\t1',
        'UUID=3b1f0c52-9e2d-4d1a-8a55-0f6e2c7d9b10\t/srv/data\text4\tnoatime,nodev\t0\t2',
        'UUID=0a1b2c3d-1111-2222-3333-444455556666 none swap sw 0 0',
        '',
      ].join('\n'),
    );
  });
});
