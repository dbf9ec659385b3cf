import { describe, expect, it } from 'vitest';
import { carryList, DEBIAN_CARRY_DEFAULTS, REGENERATED } from '../../lib/carry.js';

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
