// `ab-upgrade lab ...`: the lab on one machine. Builds what is missing (cached by recipe),
// starts the Temporal dev server, runs a worker in this process, boots the Debian 12 VM and
// either upgrades it end to end (`lab upgrade`) or keeps it up for hands-on use (`lab up`).
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { startUpgradeAndFollow } from '../client/follow.js';
import { configuredDataConverter } from '../lib/codec.js';
import { formatStatus } from '../lib/format-status.js';
import { pinConnection, plaintextConnection } from '../lib/temporal-connection.js';
import { profileFileContent } from '../lib/profile.js';
import { TASK_QUEUE } from '../lib/workflow-api.js';
import { startLab } from './session.js';
import type { Layout } from './vm.js';

const stateDir = () => process.env.AB_UPGRADE_STATE ?? join(homedir(), '.local', 'state', 'ab-upgrade');

/** Starts (or finds) the Temporal dev server through temporal-dev.sh; returns its address. */
export async function ensureTemporal(): Promise<string> {
  const script = new URL('../temporal-dev.sh', import.meta.url).pathname;
  await promisify(execFile)('bash', [script, 'start'], { timeout: 20 * 60_000 });
  const address = process.env.TEMPORAL_ADDRESS ?? `127.0.0.1:${process.env.TEMPORAL_PORT ?? 7233}`;
  process.env.TEMPORAL_ADDRESS = address;
  // The lab's client talks to this local dev server in plaintext, whatever TLS or API key
  // settings the flags or the environment hold for a real cluster.
  pinConnection(plaintextConnection(address));
  return address;
}

/** Brings up everything; returns the profile (also written as YAML) and a teardown. */
async function labUp(layout: Layout, o: { kexec?: boolean; debootstrap?: boolean }) {
  console.log(`lab: building or reusing the ${layout} image and the Debian 13 release (cached)...`);
  const address = await ensureTemporal();
  const dir = join(stateDir(), 'lab');
  mkdirSync(dir, { recursive: true });
  const name = `lab-${layout}`;
  // The lab's workflows are started by the CLI's client: its worker uses the same payload codec.
  const dataConverter = configuredDataConverter();
  const lab = await startLab({ layout, name, workDir: dir, address, taskQueue: TASK_QUEUE, ...(dataConverter ? { workerOptions: { dataConverter } } : {}) });
  console.log(`lab: Temporal at ${address} (Web UI http://127.0.0.1:8233), worker on task queue ${TASK_QUEUE}`);
  const profile = lab.profile({
    ...(o.kexec ? { reboot: 'kexec' as const } : {}),
    ...(o.debootstrap ? { release: { source: 'debootstrap' as const, suite: 'trixie' } } : {}),
  });
  const profilePath = join(dir, `${name}.yaml`);
  writeFileSync(profilePath, `# written by ab-upgrade lab\n${stringify(profileFileContent(profile))}`);
  console.log(`lab: Debian 12 VM up, SSH on 127.0.0.1:${lab.vm.sshPort}; profile ${profilePath}`);
  return { profile, profilePath, down: () => lab.down() };
}

export function labCommand(): Command {
  const lab = new Command('lab').description('a real Debian 12 VM (QEMU) to upgrade to Debian 13 on this machine');
  const layout = () => new Option('--layout <layout>', 'boot layout').choices(['bios', 'uefi']).default('bios');
  lab
    .command('upgrade')
    .description('build what is missing, boot the VM, upgrade it 12 → 13 and print the timeline and downtime')
    .addOption(layout())
    .option('--kexec', 'trial boot with kexec instead of a firmware reboot')
    .option('--debootstrap', 'install the release with debootstrap on the VM instead of streaming the image')
    .option('--keep', 'leave the VM running afterwards (until Ctrl-C)')
    .action(async (o: { layout: Layout; kexec?: boolean; debootstrap?: boolean; keep?: boolean }) => {
      const up = await labUp(o.layout, o);
      try {
        const s = await startUpgradeAndFollow(up.profile);
        console.log(formatStatus(s));
        process.exitCode = s.state === 'committed' ? 0 : 1;
        if (o.keep) await waitForInterrupt(`lab: VM kept running (profile ${up.profilePath}); Ctrl-C stops it`);
      } finally {
        await up.down();
      }
    });
  lab
    .command('up')
    .description('boot the VM with a worker and leave it up: drive it with ab-upgrade plan/upgrade/approve/status using the printed profile')
    .addOption(layout())
    .action(async (o: { layout: Layout }) => {
      const up = await labUp(o.layout, {});
      try {
        await waitForInterrupt(`lab: try  ab-upgrade plan ${up.profilePath}  then  ab-upgrade upgrade ${up.profilePath} --follow ; Ctrl-C stops the VM`);
      } finally {
        await up.down();
      }
    });
  return lab;
}

function waitForInterrupt(message: string): Promise<void> {
  console.log(message);
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}
