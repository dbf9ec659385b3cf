// The benchmark's fleet: N real OpenSSH sshd on loopback ports (each its own host key, one shared
// client key), and the files both tools read: one Ansible INI inventory, a known_hosts file
// pinning every host key, and an ab-upgrade profile template.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { boundedMapInOrder } from '../lib/bounded-map.js';
import { startSshd, type Sshd } from '../test/helpers/sshd-process.js';

export interface Fleet {
  hosts: Array<{ name: string; sshd: Sshd }>;
  identityFile: string;
  inventory: string;
  knownHosts: string;
  template: string;
  /** Stops every sshd (each bounded in time by the helper); never throws. */
  stop(): Promise<void>;
}

const STARTS_AT_ONCE = 8;
// Ansible copies its modules over SFTP (then scp, then a pipe): a real host's sshd serves it.
const SSHD_CONFIG = ['Subsystem sftp internal-sftp'];

/** Health units the template checks, so that the pre-flight gather asks systemd and dpkg about them. */
export const HEALTH_UNITS = ['ssh.service', 'cron.service'];

export async function startFleet(count: number, dir: string): Promise<Fleet> {
  const started: Sshd[] = [];
  const stop = async () => {
    await Promise.all(started.map((s) => s.stop().catch(() => {})));
  };
  try {
    const first = await startSshd({ extraConfig: SSHD_CONFIG });
    started.push(first);
    const rest = await boundedMapInOrder(Array.from({ length: count - 1 }), STARTS_AT_ONCE, async () => {
      const s = await startSshd({ identityFile: first.identityFile, extraConfig: SSHD_CONFIG });
      started.push(s);
      return s;
    });
    const all = [first, ...rest];
    const hosts = all.map((sshd, i) => ({ name: `h${String(i + 1).padStart(2, '0')}`, sshd }));
    const identityFile = join(dir, 'client_key');
    // The first sshd's directory goes away with it; both tools read a copy.
    await writeFile(identityFile, await readFile(first.identityFile), { mode: 0o600 });
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(knownHosts, hosts.map((h) => `[127.0.0.1]:${h.sshd.port} ${h.sshd.hostKeyLine}\n`).join(''));
    const inventory = join(dir, 'hosts.ini');
    await writeFile(
      inventory,
      [
        '[fleet]',
        ...hosts.map((h) => `${h.name} ansible_port=${h.sshd.port} ab_upgrade_hostKey="${h.sshd.hostKeyLine}"`),
        '',
        '[fleet:vars]',
        'ansible_host=127.0.0.1',
        `ansible_user=${first.user}`,
        `ansible_ssh_private_key_file=${identityFile}`,
        // Ansible's side of the pinned host keys (ab-upgrade reads ab_upgrade_hostKey).
        `ansible_ssh_common_args='-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes'`,
        '',
      ].join('\n'),
    );
    const template = join(dir, 'template.yaml');
    // This machine is not laid out in A/B slots: the slots name devices that do not exist, so
    // every plan is a refusal, after all of its facts were read.
    await writeFile(
      template,
      [
        'slots: { a: /dev/ab-bench-missing-a, b: /dev/ab-bench-missing-b }',
        'data: { device: /dev/ab-bench-missing-data, mountPoint: /srv }',
        'release: { source: debootstrap, suite: trixie }',
        `health: { units: [${HEALTH_UNITS.join(', ')}] }`,
        '',
      ].join('\n'),
    );
    return { hosts, identityFile, inventory, knownHosts, template, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
