// Downtime benchmark on the lab VM, all in one run so the ratios compare like with like:
//   1. the upgrade 12 → 13 with a firmware reboot (A → B): our downtime, reboot issued → healthy;
//   2. plain reboots of the new slot, nothing of ours involved (issue the reboot, poll SSH with
//      the same probe and interval until a new boot_id answers): the baseline, median of N;
//   3. the image install alone: raw SSH transfer, local unpack on the host, and our stream;
//   4. the upgrade with kexec (B → A);
//   5. step 3 again on a 2-vCPU VM, where the stream can overlap decryption and unpacking.
// Steps 3 and 5 measure the rootfs tarball and (unless --formats tar.zst) the ext4 image of the
// same rootfs (lab/build-release-image.sh), each format against its own bytes.
// Prints a table and writes bench/results/downtime.json.
//   npm run bench:downtime [-- --reboots 3 --layout bios --formats tar.zst,ext4-image]
import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReadStream } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { pollComeback, probeOnce } from '../activities/health.js';
import { AFTER_WRITE } from '../activities/install-image.js';
import { connectForBulk, receiveScript, UNPACK } from '../activities/release.js';
import { SshHost, targetFromProfile } from '../activities/ssh.js';
import { startHostWorkflow, follow } from '../client/follow.js';
import { hostStatus } from '../client/temporal.js';
import type { Profile } from '../lib/profile.js';
import { statusQuery, type WorkflowStatus } from '../lib/workflow-api.js';
import { ensureTemporal } from '../lab/command.js';
import { ensureReleaseImage, labProfile, startLab, type LabArtifact, type LabImage } from '../lab/session.js';
import { startVm, type Layout } from '../lab/vm.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const REBOOTS = Number(arg('reboots', '3'));
const LAYOUT = arg('layout', 'bios') as Layout;
const FORMATS = arg('formats', 'tar.zst,ext4-image').split(',');
for (const f of FORMATS) if (f !== 'tar.zst' && f !== 'ext4-image') throw new Error(`--formats: ${f} is not tar.zst or ext4-image`);
const WITH_IMAGE = FORMATS.includes('ext4-image');
const POLL_MS = 1000;
const round = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function upgrade(client: Client, profile: Profile): Promise<WorkflowStatus> {
  const handle = await startHostWorkflow(client, 'upgradeHost', profile, true);
  await follow(() => handle.query(statusQuery), (l) => console.error(l));
  const s = (await hostStatus(client, profile.name))!;
  if (s.state !== 'committed' || !s.downtime) throw new Error(`upgrade ended ${s.state}: ${s.reason ?? ''}`);
  return s;
}

/** A reboot with nothing of ours in the loop: same probe, same interval as the runbook. */
async function plainReboot(profile: Profile): Promise<number> {
  const before = await probeOnce(profile);
  if (!before.bootId) throw new Error(`host not answering before the reboot: ${before.detail}`);
  const h = await SshHost.connect(targetFromProfile(profile));
  const t0 = Date.now();
  await h.exec(['systemd-run', '--on-active=1', '--timer-property=AccuracySec=100ms', 'systemctl', 'reboot']);
  h.close();
  const giveUp = AbortSignal.timeout(10 * 60_000);
  await pollComeback(profile, before.bootId, POLL_MS, giveUp).catch((e: unknown) => {
    throw giveUp.aborted ? new Error('plain reboot: host did not come back within 10 min') : e;
  });
  return (Date.now() - t0) / 1000 - 1; // minus the 1 s timer
}

/**
 * The same image bytes three ways, into the spare slot (keeping its label; the next upgrade
 * reformats it), `reps` times each; medians. All over the install's own bulk connection (its
 * cipher follows the host's CPU).
 */
async function streamFigures(profile: Profile, release: LabArtifact, spareDevice: string, ext4: LabArtifact | null, reps = 3) {
  const image = release.path;
  const control = await SshHost.connect(targetFromProfile(profile));
  const h = await connectForBulk(control, profile).finally(() => control.close());
  const mnt = '/run/ab-bench';
  const timed = async (f: () => Promise<unknown>) => {
    const t = Date.now();
    await f();
    return (Date.now() - t) / 1000;
  };
  const fresh = () => h.script('set -eu; rm -rf "$1/root"; mkdir "$1/root"; sync; echo 3 > /proc/sys/vm/drop_caches', [mnt], { timeoutMs: 600_000 });
  const runs: Array<{ rawSshS: number; streamS: number; localUnpackS: number }> = [];
  try {
    await h.script('set -eu; umount "$2" 2>/dev/null || true; l=$(blkid -s LABEL -o value "$1" || true); mkfs.ext4 -q -F ${l:+-L "$l"} "$1"; mkdir -p "$2"; mount "$1" "$2"; mkdir -p "$2/root"', [spareDevice, mnt]);
    await h.upload(`${mnt}/image.tar.zst`, createReadStream(image));
    for (let i = 0; i < reps; i++) {
      const rawSshS = await timed(() => h.exec(['sh', '-c', 'cat > /dev/null'], { stdin: createReadStream(image), timeoutMs: 600_000 }));
      await fresh();
      // The product's own receiving script (unpack, and the host's sha256 of what it received),
      // fed over SSH as the install does; and its unpack command alone from a local file.
      const streamS = await timed(() => h.script(`set -eu\n${receiveScript('tar.zst')}`, [`${mnt}/root`, release.sha256], { stdin: createReadStream(image), timeoutMs: 600_000 }));
      await fresh();
      const localUnpackS = await timed(() => h.script(`set -eu\n{ ${UNPACK['tar.zst']}; } < "$2"`, [`${mnt}/root`, `${mnt}/image.tar.zst`], { timeoutMs: 600_000 }));
      await fresh();
      runs.push({ rawSshS, streamS, localUnpackS });
    }
    await h.script('set -eu; cd /; umount "$1"', [mnt]);
    const tar = summary(runs);
    return { ...tar, ext4Image: ext4 ? { ...(await imageStreamFigures(h, ext4, spareDevice, reps)), bytes: statSync(ext4.path).size } : null, bytes: statSync(image).size };
  } finally {
    h.close();
  }
}

type Run = { rawSshS: number; streamS: number; localUnpackS: number; postS?: number };
function summary(runs: Run[]) {
  const rawSshS = round(median(runs.map((r) => r.rawSshS)));
  const streamS = round(median(runs.map((r) => r.streamS)));
  const localUnpackS = round(median(runs.map((r) => r.localUnpackS)));
  return { rawSshS, streamS, localUnpackS, streamRatio: round(streamS / Math.max(rawSshS, localUnpackS)), runs: runs.map((r) => [r.rawSshS, r.streamS, r.localUnpackS].map(round)) };
}

/**
 * The ext4 image the same three ways, straight onto the spare device: raw SSH transfer of its
 * bytes, the product's receiving script (zstd -d | dd, the host's sha256), and the same write
 * from a local copy (on the running root: the data partition is too small). postS: the fsck,
 * UUID and growth that follow the write in the install (not part of the stream). The spare gets
 * its label and UUID back afterwards, so the next upgrade finds it.
 */
async function imageStreamFigures(h: SshHost, ext4: LabArtifact, spareDevice: string, reps: number) {
  const local = '/var/tmp/ab-bench.ext4.zst';
  const timed = async (f: () => Promise<unknown>) => {
    const t = Date.now();
    await f();
    return (Date.now() - t) / 1000;
  };
  const [label, uuid] = (await h.script('set -eu; blkid -s LABEL -o value "$1" || true; blkid -s UUID -o value "$1"', [spareDevice])).stdout.split('\n');
  if (!uuid) throw new Error(`${spareDevice}: no filesystem UUID to give back after the image runs`);
  const fresh = () => h.script('set -eu; sync; echo 3 > /proc/sys/vm/drop_caches', [], { timeoutMs: 600_000 });
  const runs: Run[] = [];
  try {
    await h.upload(local, createReadStream(ext4.path));
    for (let i = 0; i < reps; i++) {
      const rawSshS = await timed(() => h.exec(['sh', '-c', 'cat > /dev/null'], { stdin: createReadStream(ext4.path), timeoutMs: 600_000 }));
      await fresh();
      const streamS = await timed(() => h.script(`set -eu\n${receiveScript('ext4-image')}`, [spareDevice, ext4.sha256], { stdin: createReadStream(ext4.path), timeoutMs: 600_000 }));
      const postS = await timed(() => h.script(`set -eu\n${AFTER_WRITE}`, [spareDevice, uuid, label || 'ab-bench', '/run/ab-bench.lock'], { timeoutMs: 600_000 }));
      await fresh();
      const localUnpackS = await timed(() => h.script(`set -eu\n{ ${UNPACK['ext4-image']}; } < "$2"`, [spareDevice, local], { timeoutMs: 600_000 }));
      await fresh();
      runs.push({ rawSshS, streamS, localUnpackS, postS });
    }
  } finally {
    await h.script('set -eu; rm -f "$1"; mkfs.ext4 -q -F ${3:+-L "$3"} -U "$4" "$2"', [local, spareDevice, label ?? '', uuid], { timeoutMs: 600_000 });
  }
  return { ...summary(runs), postS: round(median(runs.map((r) => r.postS!))) };
}

/**
 * The stream again on a 2-vCPU lab VM (multi-threaded TCG, slot A's Debian 12 kernel): with
 * one vCPU, SSH decryption and zstd + tar cannot overlap at all, so only a second CPU shows how
 * well the stream overlaps them (real servers have many cores).
 */
async function streamFiguresTwoVcpus(image: LabImage, release: LabArtifact, ext4: LabArtifact | null) {
  const vm = await startVm({ disk: image.disk, layout: image.layout, name: 'bench-2vcpu', workDir: mkdtempSync(join(tmpdir(), 'ab-bench-')), cpus: 2, tcgThread: 'multi' });
  try {
    await vm.waitForSsh(240_000);
    const spare = (await vm.ssh('blkid -L ab-slot-b', { timeoutMs: 30_000 })).stdout.trim();
    if (!spare) throw new Error('2-vCPU VM: no ab-slot-b');
    return await streamFigures(labProfile(image, vm, release), release, spare, ext4);
  } finally {
    await vm.stop();
  }
}

async function main() {
  const address = await ensureTemporal();
  const client = new Client({ connection: await Connection.connect({ address }) });
  // This run's own task queue (startHostWorkflow reads the same variable as the worker).
  const taskQueue = `bench-${Date.now()}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  // Built (or found in the cache) before the VM starts: it takes the machine's CPU.
  const ext4 = WITH_IMAGE ? await ensureReleaseImage() : null;
  const lab = await startLab({ layout: LAYOUT, name: `bench-${LAYOUT}`, workDir: mkdtempSync(join(tmpdir(), 'ab-bench-')), address, taskQueue });
  let up: WorkflowStatus, kx: WorkflowStatus, oneVcpu: Awaited<ReturnType<typeof streamFigures>>;
  const reboots: number[] = [];
  try {
    const base = { timings: { approvalTimeout: '1h', comebackDeadline: '5m', pollInterval: `${POLL_MS}ms`, healthTimeout: '2m' } };
    console.error('bench: 1/5 upgrade with a firmware reboot');
    up = await upgrade(client, lab.profile(base));
    console.error(`bench: 2/5 ${REBOOTS} plain reboots of the new slot`);
    for (let i = 0; i < REBOOTS; i++) reboots.push(await plainReboot(lab.profile(base)));
    console.error('bench: 3/5 image stream vs raw SSH vs local unpack (one vCPU)');
    oneVcpu = await streamFigures(lab.profile(base), lab.release.good, up.facts!.active.device, ext4);
    console.error('bench: 4/5 upgrade with kexec');
    kx = await upgrade(client, lab.profile({ ...base, reboot: 'kexec' }));
  } finally {
    await lab.down();
    await client.connection.close();
  }
  // Alone on the machine: a second VM next to the first would take its CPU.
  console.error('bench: 5/5 the same stream figures on a 2-vCPU VM');
  const stream = await streamFiguresTwoVcpus(lab.image, lab.release.good, ext4);

  const d = up.downtime!;
  const plainRebootS = round(median(reboots));
  const upgradeDowntimeS = round(d.downtimeMs / 1000);
  const kexecDowntimeS = round(kx.downtime!.downtimeMs / 1000);
  const result = {
    upgradeDowntimeS,
    plainRebootS,
    ratio: round(upgradeDowntimeS / plainRebootS),
    kexecDowntimeS,
    kexecRatio: round(kexecDowntimeS / plainRebootS),
    // The stream figures (medians of 3) on the 2-vCPU VM; the one-vCPU ones below.
    streamS: stream.streamS,
    rawSshS: stream.rawSshS,
    localUnpackS: stream.localUnpackS,
    streamRatio: stream.streamRatio,
    streamRuns: stream.runs,
    streamVcpus: 2,
    streamBytes: stream.bytes,
    // The ext4 image of the same rootfs on the same 2-vCPU VM (the one-vCPU figures in oneVcpu.ext4Image).
    ext4Image: stream.ext4Image,
    formats: FORMATS,
    oneVcpu,
    plainRebootsS: reboots.map(round),
    firstAnswerS: round((d.answeredAt - d.issuedAt) / 1000),
    healthChecksS: round((d.healthyAt - d.answeredAt) / 1000),
    hostSideToSshdS: d.hostSide?.toSshdS ?? null,
    hostSideToServicesS: d.hostSide?.toServicesS ?? null,
    // Our detection lag: first answer (controller clock) minus sshd active (host clock), both
    // measured from the reboot on their own clocks.
    probeLagS: d.hostSide?.toSshdS != null ? round((d.answeredAt - d.issuedAt) / 1000 - d.hostSide.toSshdS) : null,
    kexecHostSideToSshdS: kx.downtime!.hostSide?.toSshdS ?? null,
    imageBytes: up.install?.bytes ?? null,
    layout: LAYOUT,
    accel: 'tcg',
    machine: `${hostname()}: ${cpus().length}x ${cpus()[0]?.model ?? '?'}`,
    date: new Date().toISOString(),
  };
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'downtime.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  const rows: [string, string, string][] = [
    ['upgrade downtime (firmware), issued → healthy', `${upgradeDowntimeS} s`, `ratio ${result.ratio} (goal ≤ 1.05)`],
    [`plain reboot, median of ${REBOOTS}`, `${plainRebootS} s`, reboots.map((r) => round(r)).join(' / ')],
    ['upgrade downtime (kexec)', `${kexecDowntimeS} s`, `ratio ${result.kexecRatio} (goal well under 1)`],
    ['  first answer after the reboot', `${result.firstAnswerS} s`, `probe lag vs host's sshd ${result.probeLagS ?? '?'} s`],
    ['  health checks', `${result.healthChecksS} s`, ''],
    ['  host-side: shutdown → sshd / services', `${result.hostSideToSshdS ?? '?'} / ${result.hostSideToServicesS ?? '?'} s`, ''],
    ['image stream + unpack (2 vCPUs)', `${stream.streamS} s`, `ratio ${stream.streamRatio} (goal ≤ 1.1)`],
    ['  raw ssh cat > /dev/null', `${stream.rawSshS} s`, ''],
    ['  local unpack on the host', `${stream.localUnpackS} s`, ''],
    ['image stream + unpack (1 vCPU)', `${oneVcpu.streamS} s`, `ratio ${oneVcpu.streamRatio}`],
    ['  raw ssh / local unpack', `${oneVcpu.rawSshS} / ${oneVcpu.localUnpackS} s`, ''],
  ];
  for (const [vcpus, f] of [[2, stream.ext4Image], [1, oneVcpu.ext4Image]] as const) {
    if (!f) continue;
    rows.push(
      [`ext4 image stream + write (${vcpus} vCPU${vcpus > 1 ? 's' : ''})`, `${f.streamS} s`, `ratio ${f.streamRatio} (goal ≤ 1.1); tar.zst ${vcpus > 1 ? stream.streamRatio : oneVcpu.streamRatio}`],
      ['  raw ssh / local zstd -d | dd', `${f.rawSshS} / ${f.localUnpackS} s`, `${f.bytes} bytes vs tar.zst ${vcpus > 1 ? stream.bytes : oneVcpu.bytes}`],
      ['  then e2fsck + tune2fs -U + resize2fs', `${f.postS} s`, 'not part of the stream'],
    );
  }
  for (const [a, b, c] of rows) console.log(`${a.padEnd(48)} ${b.padStart(10)}  ${c}`);
  console.log(`wrote ${out}`);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
