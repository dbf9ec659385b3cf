// A fleet campaign driven through the CLI (`ab-upgrade campaign start … --follow`, as an operator
// runs it) over two hosts of an Ansible inventory (INI groups and group vars on a profile
// template, a per-host override in the campaign file): the lab VM, reached as an unprivileged
// user with sudo, and a host whose SSH port has nothing behind it. Waves of one and a budget of
// zero: the VM's wave commits it for real; the next wave's host is unreachable, counts as a
// failure, and the campaign halts.
// Full scope only (AB_UPGRADE_E2E=full); the campaign's logic runs in CI on the workflow tests.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { CampaignStatus } from '../../lib/campaign-api.js';
import { freePort } from '../../lib/free-port.js';
import { profileFileContent } from '../../lib/profile.js';
import { fullE2e } from '../helpers/e2e-scope.js';
import { hostSlot, onVm, plainReboot, setupLab, type LabEnv } from '../helpers/lab-env.js';

const CLI = new URL('../../bin/ab-upgrade.js', import.meta.url).pathname;

describe.runIf(fullE2e)('fleet campaign on the lab VM (through the CLI)', () => {
  let lab: LabEnv;
  beforeAll(async () => {
    lab = await setupLab('bios');
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('commits the VM in wave 1, counts the unreachable host of wave 2 and halts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ab-campaign-'));
    // As a fleet usually runs it: an unprivileged login with passwordless sudo, not root. Its
    // home is on the root slot, so its authorized_keys must be carried for the probes after the
    // reboot; /etc/sudoers.d is carried by default.
    await onVm(
      lab.vm,
      'useradd -m -s /bin/bash deploy && install -d -o deploy -g deploy -m 700 /home/deploy/.ssh' +
        ' && install -o deploy -g deploy -m 600 /root/.ssh/authorized_keys /home/deploy/.ssh/authorized_keys' +
        " && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy && chmod 440 /etc/sudoers.d/deploy",
    );
    const vmProfile = lab.profile({ user: 'deploy', become: 'sudo', carry: { defaults: true, files: ['/home/deploy/.ssh'], exclude: [] } });
    expect(vmProfile.become).toBe('sudo');
    // The hosts come from an Ansible inventory laid onto a template (the profile without the
    // host's own fields), as a fleet that already lives in Ansible would give them. The template
    // has no power driver; the campaign's per-host override gives the VM its QMP socket (the
    // ghost, with nothing listening on its port, must not get it).
    const { name: _n, host, port, user: _u, become: _b, hostKey, auth, power, ...template } = profileFileContent(vmProfile);
    expect(power).toMatchObject({ driver: 'qmp' });
    const ghostName = `${vmProfile.name}-ghost`;
    const identityFile = (auth as { identityFile: string }).identityFile;
    writeFileSync(join(dir, 'template.yaml'), stringify({ ...template, power: { driver: 'none' } }));
    writeFileSync(
      join(dir, 'hosts.ini'),
      [
        '[lab]',
        `${vmProfile.name} ansible_host=${host} ansible_port=${port}`,
        '[ghosts]',
        `${ghostName} ansible_host=${host} ansible_port=${await freePort()}`,
        '[fleet:children]',
        'lab',
        'ghosts',
        '[fleet:vars]',
        'ansible_user=deploy',
        'ansible_become=true',
        `ansible_ssh_private_key_file=${identityFile}`,
        `ab_upgrade_hostKey="${hostKey}"`,
        '',
      ].join('\n'),
    );
    const name = `e2e-${vmProfile.name}`;
    writeFileSync(
      join(dir, 'campaign.yaml'),
      stringify({ name, inventory: 'hosts.ini', template: 'template.yaml', limit: 'fleet', overrides: { [vmProfile.name]: { power } }, waves: [1], failureBudget: 0, retryWithin: '2s' }),
    );
    const ghost = { name: ghostName };
    const env = { ...process.env, TEMPORAL_ADDRESS: lab.env.address, AB_UPGRADE_TASK_QUEUE: lab.taskQueue };
    const cli = (...args: string[]) =>
      promisify(execFile)('node', [CLI, 'campaign', ...args], { env, timeout: 30 * 60_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
      );

    const run = await cli('start', join(dir, 'campaign.yaml'), '--follow');
    expect(run.code, run.stdout + run.stderr).toBe(1); // halted
    expect(run.stdout).toMatch(new RegExp(`${vmProfile.name}: committed`));
    expect(run.stdout).toMatch(new RegExp(`${ghost.name}: unreachable`));

    const st = await cli('status', name, '--json');
    const s = JSON.parse(st.stdout) as CampaignStatus;
    expect(s.state).toBe('halted');
    expect(Object.fromEntries(s.hosts.map((h) => [h.name, h.state]))).toEqual({ [vmProfile.name]: 'committed', [ghost.name]: 'unreachable' });
    expect(s.failures).toMatchObject({ count: 1, budget: 0 });

    // On the host itself: the new release, on slot B, committed.
    expect(await hostSlot(lab.vm)).toBe('b');
    expect(await onVm(lab.vm, '. /etc/os-release; echo $VERSION_ID')).toMatch(/^13/);
    expect((await onVm(lab.vm, 'grub-editenv list')).trim()).toMatch(/saved_entry=ab-upgrade-slot-b/);
    // The sudo login still works on the new slot, and sudo with it.
    expect((await onVm(lab.vm, "su deploy -c 'sudo -n id -u'")).trim()).toBe('0');
    // The commit holds across a plain reboot.
    expect(await plainReboot(lab.vm)).toBe('b');
  });
});
