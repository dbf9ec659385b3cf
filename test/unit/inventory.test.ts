import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { inventoryProfiles } from '../../lib/inventory-profile.js';
import { expandHostPattern, groupsOf, hostVariables, InventoryError, parseIniInventory, parseYamlInventory, selectHosts } from '../../lib/inventory.js';
import { ProfileError } from '../../lib/profile.js';

const FINGERPRINT = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

const INI = `
# a comment
; another
bastion ansible_host=192.0.2.1

[web]
web1 ansible_host=10.0.0.1 ansible_port=2222 role=web1   # trailing comment
web2:2200 "quoted=a b"
db1 role=db1-in-web

[db]
db1 ansible_host=10.0.1.1 role=db1

[web:vars]
role = web
tier=front

[prod:children]
web
db

[prod:vars]
role=prod
tier=prod
ansible_user=deploy

[all:vars]
role=all
ansible_become=yes
`;

const YAML = `
all:
  vars: { role: all, ansible_become: true }
  hosts:
    bastion: { ansible_host: 192.0.2.1 }
  children:
    prod:
      vars: { role: prod, tier: prod, ansible_user: deploy }
      children:
        web:
          vars: { role: web, tier: front }
          hosts:
            web1: { ansible_host: 10.0.0.1, ansible_port: 2222, role: web1 }
            web2: { ansible_port: 2200, quoted: a b }
            db1: { role: db1-in-web }
        db:
          hosts:
            db1: { ansible_host: 10.0.1.1, role: db1 }
`;

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof InventoryError || e instanceof ProfileError) return e.problems;
    throw e;
  }
  throw new Error('expected an error');
};

describe.each([
  ['INI', () => parseIniInventory(INI)],
  ['YAML', () => parseYamlInventory(parse(YAML))],
])('the %s form', (_, read) => {
  it('groups, children, ungrouped hosts', () => {
    const inv = read();
    expect([...inv.hostVars.keys()]).toEqual(['bastion', 'web1', 'web2', 'db1']);
    expect(groupsOf(inv, 'bastion').sort()).toEqual(['all', 'ungrouped']);
    expect(groupsOf(inv, 'web1').sort()).toEqual(['all', 'prod', 'web']);
    // a host in two groups
    expect(groupsOf(inv, 'db1').sort()).toEqual(['all', 'db', 'prod', 'web']);
  });

  it('variables: all < parent group < child group < host', () => {
    const inv = read();
    const web1 = hostVariables(inv, 'web1');
    expect(web1).toMatchObject({ role: 'web1', tier: 'front', ansible_user: 'deploy', ansible_host: '10.0.0.1' });
    expect(String(web1.ansible_port)).toBe('2222');
    expect(hostVariables(inv, 'web2')).toMatchObject({ role: 'web', tier: 'front', quoted: 'a b' });
    expect(String(hostVariables(inv, 'web2').ansible_port)).toBe('2200');
    expect(hostVariables(inv, 'bastion')).toMatchObject({ role: 'all', ansible_host: '192.0.2.1' });
    // db1 is in web and db (same depth): its own vars from both lines, db's line last
    expect(hostVariables(inv, 'db1')).toMatchObject({ role: 'db1', tier: 'front', ansible_host: '10.0.1.1' });
  });

  it('--limit selects groups (with their children) and hosts, in inventory order', () => {
    const inv = read();
    expect(selectHosts(inv)).toEqual(['bastion', 'web1', 'web2', 'db1']);
    expect(selectHosts(inv, 'prod')).toEqual(['web1', 'web2', 'db1']);
    expect(selectHosts(inv, 'db')).toEqual(['db1']);
    expect(selectHosts(inv, 'ungrouped')).toEqual(['bastion']);
    expect(selectHosts(inv, 'db1,bastion')).toEqual(['bastion', 'db1']);
    expect(() => selectHosts(inv, 'webb')).toThrow('--limit webb: no such group or host');
  });
});

describe('INI inventory', () => {
  it('bad lines are reported with their line numbers, all at once', () => {
    const p = problems(() =>
      parseIniInventory(['[web', 'ok1', '[web:hostvars]', '[web:vars]', 'novalue', '[x:children]', 'a b', '[y]', 'h1 "open', 'h2 bare', 'h3 ab_upgrade_slots={a:'].join('\n')),
    );
    expect(p).toEqual([
      expect.stringMatching(/^line 1: a section header must be/),
      expect.stringMatching(/^line 3: unknown section kind ":hostvars"/),
      expect.stringMatching(/^line 5: expected key=value/),
      expect.stringMatching(/^line 7: expected one group name/),
      expect.stringMatching(/^line 9: unterminated " quote/),
      expect.stringMatching(/^line 10: expected key=value/),
      expect.stringMatching(/^line 11: ab_upgrade_slots: not a YAML or JSON value/),
    ]);
  });

  it('host ranges, and unsupported ones are refused clearly', () => {
    expect(expandHostPattern('web[01:03]')).toEqual(['web01', 'web02', 'web03']);
    expect(expandHostPattern('db-[a:c].lan')).toEqual(['db-a.lan', 'db-b.lan', 'db-c.lan']);
    expect(expandHostPattern('n[1:9:4]')).toEqual(['n1', 'n5', 'n9']);
    expect(expandHostPattern('r[1:2]c[1:2]')).toEqual(['r1c1', 'r1c2', 'r2c1', 'r2c2']);
    const inv = parseIniInventory('[web]\nweb[1:2]:2222 ansible_user=x');
    expect(selectHosts(inv, 'web')).toEqual(['web1', 'web2']);
    expect(hostVariables(inv, 'web2')).toMatchObject({ ansible_port: '2222', ansible_user: 'x' });
    expect(problems(() => parseIniInventory('[web]\nweb[x,y]'))).toEqual([expect.stringMatching(/^line 2: "web\[x,y\]": unsupported host range/)]);
    expect(problems(() => parseIniInventory('\n[web]\nweb[3:1]'))).toEqual([expect.stringMatching(/^line 3: .* ends before it starts/)]);
  });

  it('ab_upgrade_* values are YAML (JSON too); other values stay strings', () => {
    const inv = parseIniInventory(`h ab_upgrade_slots='{"a": "LABEL=a", "b": "LABEL=b"}' ab_upgrade_reboot=kexec ab_upgrade_health='{tcpPorts: [80, 443]}' n=007`);
    expect(hostVariables(inv, 'h')).toEqual({ ab_upgrade_slots: { a: 'LABEL=a', b: 'LABEL=b' }, ab_upgrade_reboot: 'kexec', ab_upgrade_health: { tcpPorts: [80, 443] }, n: '007' });
  });

  it('a group containing itself is refused', () => {
    expect(problems(() => parseIniInventory('[a:children]\nb\n[b:children]\na'))).toEqual([expect.stringMatching(/group cycle: a → b → a/)]);
  });
});

describe('YAML inventory', () => {
  it('errors name the path', () => {
    expect(problems(() => parseYamlInventory(parse('all:\n  host: {}\n  children:\n    web:\n      hosts: [a]\n')))).toEqual([
      'all: unknown key "host" (a group has hosts, vars and children)',
      'all.children.web.hosts: must be a mapping of host names (to their variables or nothing)',
    ]);
    expect(problems(() => parseYamlInventory(['a']))).toEqual([expect.stringMatching(/must be a mapping of groups/)]);
  });
});

describe('inventoryProfiles', () => {
  const template = {
    auth: { agent: true },
    slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv/data' },
    release: { source: 'debootstrap', suite: 'trixie' },
  };
  const inv = () =>
    parseIniInventory(`
[web]
web1 ansible_host=10.0.0.1 ansible_port=2222 ansible_ssh_private_key_file=~/.ssh/web ab_upgrade_host_key=${FINGERPRINT}
web2 ansible_become=false ab_upgrade_hostKey=${FINGERPRINT} ab_upgrade_slots='{"a": "LABEL=a", "b": "LABEL=b"}'
[web:vars]
ansible_user=deploy
ansible_become=true
ab_upgrade_timings={comebackDeadline: 10m}
`);

  it('maps the Ansible variables onto the template; the name is the inventory hostname', () => {
    const [web1, web2] = inventoryProfiles(inv(), { template, home: '/home/op' });
    expect(web1).toMatchObject({ name: 'web1', host: '10.0.0.1', port: 2222, user: 'deploy', become: 'sudo', hostKey: FINGERPRINT, slots: 'auto' });
    expect(web1!.auth).toEqual({ agent: true, identityFile: '/home/op/.ssh/web' });
    expect(web1!.timings.comebackDeadline).toBe(600_000);
    // ansible_become=false on the host beats the group's true: become follows the user (sudo, not root)
    expect(web2).toMatchObject({ name: 'web2', host: 'web2', port: 22, slots: { a: 'LABEL=a', b: 'LABEL=b' } });
  });

  it('overrides come last; limit selects', () => {
    const ps = inventoryProfiles(inv(), { template, limit: 'web2', overrides: { web2: { reboot: 'kexec', health: { tcpPorts: [80] } } } });
    expect(ps.map((p) => [p.name, p.reboot, p.health.tcpPorts])).toEqual([['web2', 'kexec', [80]]]);
  });

  it('every error names the inventory host and the field', () => {
    const bad = parseIniInventory(`
a ansible_port=http ab_upgrade_hostKey=${FINGERPRINT}
b ab_upgrade_colour=red ab_upgrade_name=x ansible_become=maybe
c ab_upgrade_hostKey=${FINGERPRINT} ansible_ssh_private_key_file=relative/key
`);
    expect(problems(() => inventoryProfiles(bad, { template, overrides: { nope: {}, c: { reboot: 'warp' } } }))).toEqual([
      'overrides.nope: no such host in the inventory',
      expect.stringMatching(/^inventory host a: port: /),
      'inventory host b: ansible_become: must be true or false',
      expect.stringMatching(/^inventory host b: ab_upgrade_colour: no profile field "colour"/),
      'inventory host b: ab_upgrade_name: the profile name is the inventory hostname',
      expect.stringMatching(/^inventory host b: hostKey: /),
      'inventory host c: auth.identityFile: must be an absolute path',
      expect.stringMatching(/^inventory host c: reboot: /),
    ]);
  });
});
