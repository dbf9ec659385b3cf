// `ab-upgrade plan --inventory`: each selected inventory host's resolved profile is shown before
// its plan; a bad host or --limit is an input error (exit 2) naming the host and the field.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../client/cli.js';
import { loadInventoryProfiles } from '../../client/inventory-file.js';
import { freePort } from '../../lib/free-port.js';

const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';
const dir = mkdtempSync(join(tmpdir(), 'ab-cli-inventory-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const template = join(dir, 'template.yaml');
writeFileSync(template, 'auth: { agent: /nonexistent/agent.sock }\nslots: auto\ndata: { device: LABEL=data, mountPoint: /srv/data }\nrelease: { source: debootstrap, suite: trixie }\n');

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
  vi.spyOn(console, 'error').mockImplementation((s: unknown) => void err.push(String(s)));
  process.exitCode = 0;
  await main(['node', 'ab-upgrade', ...args]);
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out: out.join('\n'), err: err.join('\n'), code };
}
afterEach(() => vi.restoreAllMocks());

describe('plan --inventory', () => {
  it('shows each selected host resolved, then its plan (here: nothing answers)', async () => {
    const port = await freePort();
    const inv = join(dir, 'hosts.ini');
    writeFileSync(inv, `[web]\nweb1 ansible_host=127.0.0.1 ansible_port=${port} ansible_ssh_private_key_file=/keys/web\nweb2 ansible_host=127.0.0.1\n[web:vars]\nansible_user=deploy\nansible_become=true\nab_upgrade_hostKey=${FINGERPRINT}\n[db]\ndb1 ab_upgrade_hostKey=${FINGERPRINT}\n`);
    const r = await run('plan', '--inventory', inv, '--template', template, '--limit', 'web1');
    expect(r.code).toBe(1);
    expect(r.out).toContain(`profile web1: deploy@127.0.0.1:${port}, become sudo, auth key /keys/web + agent /nonexistent/agent.sock`);
    expect(r.out).toContain(`  host key  ${FINGERPRINT}`);
    expect(r.out).toContain('  slots     auto; data LABEL=data on /srv/data');
    expect(r.out).toMatch(/web1: cannot plan: /);
    expect(r.out).not.toContain('web2');
    expect(r.out).not.toContain('db1');
  });

  it('a bad host or --limit is exit 2, naming the inventory host and the field', async () => {
    const inv = join(dir, 'bad.yaml');
    writeFileSync(inv, `all:\n  hosts:\n    a: { ansible_port: http, ab_upgrade_hostKey: "${FINGERPRINT}" }\n    b: { ab_upgrade_hostKey: "${FINGERPRINT}" }\n`);
    const bad = await run('plan', '--inventory', inv, '--template', template);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/inventory host a: port: /);
    const limit = await run('plan', '--inventory', inv, '--template', template, '--limit', 'c');
    expect(limit.code).toBe(2);
    expect(limit.err).toContain('--limit c: no such group or host in the inventory');
    expect((await run('plan', 'web-1.yaml', '--limit', 'web')).err).toContain('--template and --limit go with --inventory');
    expect((await run('plan', 'web-1.yaml', '--inventory', inv)).err).toContain('give a profile file or --inventory (not both)');
    const noTemplate = await run('plan', '--inventory', inv);
    expect(noTemplate.code).toBe(2);
    expect(noTemplate.err).toContain('--template: required with --inventory');
    const syntax = join(dir, 'syntax.ini');
    writeFileSync(syntax, '[web\nh1\n');
    const s = await run('plan', '--inventory', syntax, '--template', template);
    expect(s.code).toBe(2);
    expect(s.err).toContain(`invalid inventory ${syntax}:\n  - line 1: a section header must be`);
  });
});

describe('plan --parallel', () => {
  it('is a whole number from 1 to 1000, with --inventory only; a bad value is exit 2 naming the option', async () => {
    const inv = join(dir, 'one.ini');
    writeFileSync(inv, `h1 ab_upgrade_hostKey=${FINGERPRINT}\n`);
    for (const [value, why] of [['0', 'must be at least 1'], ['1001', 'must be at most 1000'], ['ten', 'must be a whole number'], ['2.5', 'must be a whole number'], ['', 'must be a whole number']]) {
      const r = await run('plan', '--inventory', inv, '--template', template, '--parallel', value!);
      expect(r.code).toBe(2);
      expect(r.err).toBe(`ab-upgrade: --parallel: ${why} (hosts planned at once), not ${JSON.stringify(value)}`);
      expect(r.out).toBe('');
    }
    const single = await run('plan', 'web-1.yaml', '--parallel', '4');
    expect(single.code).toBe(2);
    expect(single.err).toContain('--parallel goes with --inventory');
  });
});

describe('the examples', () => {
  it('examples/inventory.example.ini on examples/template.example.yaml resolves every host', async () => {
    const example = (f: string) => new URL(`../../examples/${f}`, import.meta.url).pathname;
    const profiles = await loadInventoryProfiles({ inventory: example('inventory.example.ini'), template: example('template.example.yaml') });
    expect(profiles.map((p) => [p.name, p.host, p.port, p.user, p.become, p.auth.identityFile])).toEqual([
      ['web-1', '10.0.0.21', 22, 'deploy', 'sudo', '/home/ops/.ssh/id_ed25519'],
      ['web-2', '10.0.0.22', 22, 'deploy', 'sudo', '/home/ops/.ssh/id_ed25519'],
      ['db-1', '10.0.1.11', 2222, 'deploy', 'sudo', '/home/ops/.ssh/id_ed25519'],
    ]);
    expect(profiles[0]!.health).toMatchObject({ units: ['nginx.service'], tcpPorts: [80, 443] });
    expect(profiles[2]!.slots).toEqual({ a: 'PARTLABEL=root-a', b: 'PARTLABEL=root-b' });
    expect(profiles[2]!.timings.comebackDeadline).toBe(600_000);
  });
});
