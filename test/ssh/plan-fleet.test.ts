// `plan --inventory --parallel N` against real sshd hosts on loopback: hosts are planned
// concurrently up to N, the output keeps the inventory's order, and a host that does not answer
// is reported without hiding the others. This machine is not laid out in A/B slots, so every
// reachable host's plan is a refusal after its facts were read.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeAllHosts } from '../../activities/ssh.js';
import { main, planHost } from '../../client/cli.js';
import { loadInventoryProfiles } from '../../client/inventory-file.js';
import { planFleet } from '../../client/plan-fleet.js';
import { freePort } from '../../lib/free-port.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';

const T = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'ab-plan-fleet-'));
const hosts: Sshd[] = [];
const inventory = join(dir, 'hosts.ini');
const template = join(dir, 'template.yaml');
const NAMES = ['h1', 'h2', 'dead', 'h3', 'h4'];

beforeAll(async () => {
  hosts.push(await startSshd());
  const key = hosts[0]!.identityFile;
  hosts.push(...(await Promise.all([1, 2, 3].map(() => startSshd({ identityFile: key })))));
  const deadPort = await freePort();
  const line = (name: string, s: Sshd) => `${name} ansible_port=${s.port} ab_upgrade_hostKey="${s.hostKeyLine}"`;
  writeFileSync(
    inventory,
    [
      '[fleet]',
      line('h1', hosts[0]!),
      line('h2', hosts[1]!),
      `dead ansible_port=${deadPort} ab_upgrade_hostKey="${hosts[0]!.hostKeyLine}"`,
      line('h3', hosts[2]!),
      line('h4', hosts[3]!),
      '[fleet:vars]',
      `ansible_host=127.0.0.1\nansible_user=${hosts[0]!.user}\nansible_ssh_private_key_file=${key}`,
      '',
    ].join('\n'),
  );
  writeFileSync(template, 'slots: { a: /dev/ab-test-missing-a, b: /dev/ab-test-missing-b }\ndata: { device: /dev/ab-test-missing-data, mountPoint: /srv }\nrelease: { source: debootstrap, suite: trixie }\n');
}, T);

afterAll(async () => {
  closeAllHosts();
  await Promise.all(hosts.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
}, T);

describe('plan over an inventory', () => {
  it('plans up to --parallel hosts at once and prints them in inventory order', { timeout: T }, async () => {
    const profiles = await loadInventoryProfiles({ inventory, template });
    let inFlight = 0;
    let maxInFlight = 0;
    const finished: string[] = [];
    const printed: string[] = [];
    const ok = await planFleet(profiles, {
      parallel: 2,
      json: false,
      print: (s) => printed.push(s),
      planOne: async (p, check) => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        try {
          // h1 answers last: the others must wait for it in the output, not in the pool.
          if (p.name === 'h1') await new Promise((r) => setTimeout(r, 500));
          return await planHost(p, check);
        } finally {
          inFlight--;
          finished.push(p.name);
        }
      },
    });
    expect(ok).toBe(false);
    expect(maxInFlight).toBe(2);
    expect(finished[0]).not.toBe('h1');
    expect(printed.map((s) => /^profile (\S+):/m.exec(s)?.[1])).toEqual(NAMES);
    for (const [i, name] of NAMES.entries()) {
      if (name === 'dead') expect(printed[i]).toMatch(/^dead: cannot plan: \S/m);
      else {
        expect(printed[i]).toContain(`plan for ${name} (`);
        expect(printed[i]).toContain('REFUSED — the upgrade would stop before writing anything:');
        expect(printed[i]).toMatch(/\/dev\/ab-test-missing-a/);
        expect(printed[i]).toMatch(/pre-flight: \d+ inhibitors?/);
      }
    }
  });

  it('through the CLI with --parallel and --json: one entry per host, in order, the dead one with its error', { timeout: T }, async () => {
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
    try {
      process.exitCode = 0;
      await main(['node', 'ab-upgrade', 'plan', '--inventory', inventory, '--template', template, '--parallel', '5', '--json']);
    } finally {
      vi.restoreAllMocks();
    }
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    const all = JSON.parse(out.join('\n')) as Array<{ host: string; ok: boolean; plan: { error?: string; refusals?: string[]; preflight?: { inhibitors: number } } }>;
    expect(all.map((e) => e.host)).toEqual(NAMES);
    for (const e of all) {
      expect(e.ok).toBe(false);
      if (e.host === 'dead') expect(e.plan.error).toBeTruthy();
      else {
        expect(e.plan.error).toBeUndefined();
        expect(e.plan.refusals!.join('\n')).toContain('/dev/ab-test-missing-a');
        expect(e.plan.preflight!.inhibitors).toBeGreaterThan(0);
      }
    }
  });
});
