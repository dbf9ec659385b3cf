import { describe, expect, it } from 'vitest';
import { mergeAccounts, type AccountFiles } from '../../lib/accounts.js';

// The running slot: Debian 12 with one admin (alice, uid 1001) and postgres installed.
const OLD: AccountFiles = {
  passwd: `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:100:107::/nonexistent:/usr/sbin/nologin
sshd:x:101:65534::/run/sshd:/usr/sbin/nologin
postgres:x:102:110:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
libvirt-qemu:x:64055:108:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin
alice:x:1001:1001:Alice Admin,,,:/home/alice:/bin/bash
`,
  shadow: `root:$y$j9T$OLDROOTsalt$oldroothasholdroothasholdroothash:19700:0:99999:7:::
daemon:*:19700:0:99999:7:::
bin:*:19700:0:99999:7:::
_apt:*:19700:0:99999:7:::
nobody:*:19700:0:99999:7:::
systemd-network:!*:19700::::::
messagebus:!:19700::::::
sshd:!:19700::::::
postgres:!:19700::::::
libvirt-qemu:!:19700::::::
alice:$y$j9T$ALICEsalt$alicehashalicehashalicehash:19710:0:99999:7:::
`,
  group: `root:x:0:
daemon:x:1:
adm:x:4:alice,ghost
sudo:x:27:alice
users:x:100:
messagebus:x:107:
kvm:x:108:libvirt-qemu
postgres:x:110:
nogroup:x:65534:
systemd-network:x:998:
alice:x:1001:
developers:x:1500:alice,bob
`,
  gshadow: `root:*::
daemon:*::
adm:*::alice,ghost
sudo:*::alice
users:*::
messagebus:!::
kvm:!::libvirt-qemu
postgres:!::
nogroup:*::
systemd-network:!*::
alice:!::
developers:$6$GROUPsalt$grouphash:alice:alice,bob
`,
};

// The freshly installed slot: Debian 13 from debootstrap, with postgresql (new uid) and a new
// daemon user (polkitd).
const NEW: AccountFiles = {
  passwd: `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin
messagebus:x:990:990:System Message Bus:/nonexistent:/usr/sbin/nologin
sshd:x:989:65534:sshd user:/run/sshd:/usr/sbin/nologin
polkitd:x:991:991:User for polkitd:/:/usr/sbin/nologin
postgres:x:103:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash
`,
  shadow: `root:*:20300:0:99999:7:::
daemon:*:20300:0:99999:7:::
bin:*:20300:0:99999:7:::
_apt:*:20300:0:99999:7:::
nobody:*:20300:0:99999:7:::
systemd-network:!*:20300::::::
messagebus:!*:20300::::::
sshd:!*:20300::::::
polkitd:!*:20300::::::
postgres:!:20300::::::
`,
  group: `root:x:0:
daemon:x:1:
adm:x:4:
sudo:x:27:
users:x:100:
postgres:x:104:
nogroup:x:65534:
systemd-network:x:998:
messagebus:x:990:
polkitd:x:991:
`,
  gshadow: `root:*::
daemon:*::
adm:*::
sudo:*::
users:*::
postgres:!::
nogroup:*::
systemd-network:!*::
messagebus:!*::
polkitd:!*::
`,
};

const table = (text: string) =>
  text
    .split('\n')
    .filter((l) => l)
    .map((l) => l.split(':'));
const byName = (text: string) => new Map(table(text).map((r) => [r[0]!, r]));
const line = (text: string, name: string) => text.split('\n').find((l) => l.startsWith(`${name}:`));

describe('mergeAccounts', () => {
  const m = mergeAccounts(OLD, NEW);

  it('keeps every account of the new release, including a new daemon user', () => {
    const names = table(m.passwd).map((r) => r[0]);
    for (const n of ['root', 'daemon', 'bin', '_apt', 'nobody', 'systemd-network', 'messagebus', 'sshd', 'polkitd', 'postgres'])
      expect(names).toContain(n);
    expect(line(m.passwd, 'polkitd')).toBe('polkitd:x:991:991:User for polkitd:/:/usr/sbin/nologin');
  });

  it("keeps the new release's passwd line for a name present in both", () => {
    expect(line(m.passwd, 'postgres')).toBe('postgres:x:103:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash');
    expect(line(m.passwd, 'messagebus')).toBe('messagebus:x:990:990:System Message Bus:/nonexistent:/usr/sbin/nologin');
    expect(table(m.passwd).filter((r) => r[0] === 'postgres')).toHaveLength(1);
  });

  it('carries the human user (uid 1001) and reports it', () => {
    expect(m.humans).toEqual(['alice']);
    expect(line(m.passwd, 'alice')).toBe('alice:x:1001:1001:Alice Admin,,,:/home/alice:/bin/bash');
    // new release's lines first, then the humans
    expect(table(m.passwd).at(-1)![0]).toBe('alice');
  });

  it('does not carry old system users, nobody (65534) or the 60000+ system range', () => {
    expect(line(m.passwd, 'libvirt-qemu')).toBeUndefined();
    expect(m.humans).not.toContain('nobody');
    expect(m.humans).not.toContain('libvirt-qemu');
    const withoutNobody = mergeAccounts(OLD, { ...NEW, passwd: NEW.passwd.replace(/^nobody:.*\n/m, '') });
    expect(line(withoutNobody.passwd, 'nobody')).toBeUndefined();
    expect(withoutNobody.humans).toEqual(['alice']);
  });

  it("carries the human's shadow hash and takes root's hash from the old slot", () => {
    expect(line(m.shadow, 'alice')).toBe('alice:$y$j9T$ALICEsalt$alicehashalicehashalicehash:19710:0:99999:7:::');
    expect(line(m.shadow, 'root')).toBe('root:$y$j9T$OLDROOTsalt$oldroothasholdroothasholdroothash:19700:0:99999:7:::');
  });

  it("uses the new release's shadow line for a user the old slot did not have", () => {
    expect(line(m.shadow, 'polkitd')).toBe('polkitd:!*:20300::::::');
  });

  it('writes exactly one shadow line per passwd line, in the same order, 9 fields each', () => {
    const users = table(m.passwd).map((r) => r[0]);
    const shadow = table(m.shadow);
    expect(shadow.map((r) => r[0])).toEqual(users);
    for (const r of shadow) expect(r).toHaveLength(9);
  });

  it('locks an account that has no shadow line anywhere', () => {
    const merged = mergeAccounts(OLD, { ...NEW, passwd: `${NEW.passwd}ntpsec:x:992:992::/nonexistent:/usr/sbin/nologin\n` });
    expect(line(merged.shadow, 'ntpsec')).toBe('ntpsec:!::0:99999:7:::');
  });

  it("carries the human's sudo membership into the new group file", () => {
    expect(line(m.group, 'sudo')).toBe('sudo:x:27:alice');
  });

  it('keeps only members that exist as users', () => {
    expect(line(m.group, 'adm')).toBe('adm:x:4:alice');
  });

  it("keeps the new release's gid for a group present in both", () => {
    expect(line(m.group, 'postgres')).toBe('postgres:x:104:');
    expect(line(m.group, 'messagebus')).toBe('messagebus:x:990:');
  });

  it('adds the human groups (gid >= 1000) and drops old system groups', () => {
    expect(line(m.group, 'alice')).toBe('alice:x:1001:');
    expect(line(m.group, 'developers')).toBe('developers:x:1500:alice');
    expect(line(m.group, 'kvm')).toBeUndefined();
    expect(line(m.group, 'polkitd')).toBe('polkitd:x:991:');
    expect(table(m.group).filter((r) => r[0] === 'nogroup')).toHaveLength(1);
  });

  it('writes a gshadow consistent with group: same names, same order, same members', () => {
    const group = table(m.group);
    const gshadow = table(m.gshadow);
    expect(gshadow.map((r) => r[0])).toEqual(group.map((r) => r[0]));
    for (const [i, g] of group.entries()) {
      expect(gshadow[i]).toHaveLength(4);
      expect(gshadow[i]![3], g[0]).toBe(g[3]);
    }
  });

  it('keeps group passwords and administrators in gshadow', () => {
    const gs = byName(m.gshadow);
    expect(gs.get('developers')).toEqual(['developers', '$6$GROUPsalt$grouphash', 'alice', 'alice']);
    expect(gs.get('sudo')).toEqual(['sudo', '*', '', 'alice']);
    expect(gs.get('polkitd')).toEqual(['polkitd', '!*', '', '']);
    expect(gs.get('alice')).toEqual(['alice', '!', '', '']);
  });

  it('writes files ending in one newline with no comments or blank lines', () => {
    for (const f of [m.passwd, m.shadow, m.group, m.gshadow]) {
      expect(f.endsWith('\n')).toBe(true);
      expect(f.endsWith('\n\n')).toBe(false);
      expect(f.split('\n').slice(0, -1).every((l) => l && !l.startsWith('#'))).toBe(true);
    }
  });

  it('is stable: merging the result with the same old slot changes nothing', () => {
    const again = mergeAccounts(OLD, { passwd: m.passwd, shadow: m.shadow, group: m.group, gshadow: m.gshadow });
    expect(again.passwd).toBe(m.passwd);
    expect(again.shadow).toBe(m.shadow);
    expect(again.group).toBe(m.group);
    expect(again.gshadow).toBe(m.gshadow);
    expect(again.humans).toEqual([]);
  });

  it('does not change the new release when the old slot has no humans', () => {
    const noHumans: AccountFiles = {
      passwd: OLD.passwd.replace(/^alice:.*\n/m, ''),
      shadow: OLD.shadow.replace(/^alice:.*\n/m, ''),
      group: 'root:x:0:\nsudo:x:27:\n',
      gshadow: 'root:*::\nsudo:*::\n',
    };
    const r = mergeAccounts(noHumans, NEW);
    expect(r.humans).toEqual([]);
    expect(r.passwd).toBe(NEW.passwd);
    expect(r.group).toBe(NEW.group);
    expect(r.gshadow).toBe(NEW.gshadow);
  });
});
