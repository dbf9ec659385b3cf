// Downtime benchmark on the lab VM, all in one run so the ratios compare like with like. Every
// restart is measured the same way: reboot issued → first SSH answer of the new boot, and
// issued → healthy (the runbook's own comeback poll and health checks; bench/downtime-restarts.ts).
//   1. BIOS VM: N upgrades 12 → 13 as a round trip (A → B → A → …), each with a firmware reboot:
//      our downtime, median of N;
//   2. after the first two, N plain reboots of the slot each landed on (so of both slots): the
//      baseline, nothing of ours in the loop;
//   3. the image install alone (one vCPU): raw SSH transfer, local unpack or write on the host,
//      and our stream, for the rootfs tarball and the ext4 image of the same rootfs;
//   4. N plain kexecs of the running kernel against the plain reboots: what the firmware costs;
//   5. UEFI VM (OVMF): N plain reboots and N plain kexecs, where the firmware's own start counts;
//   6. with --two-vcpus: step 3 again on a 2-vCPU VM (multi-threaded TCG).
// The accelerator and vCPUs are recorded as the VMs were started, and the guest's own view.
// Prints a table and writes bench/results/downtime.json; --parts stream runs step 3 alone (on a
// fresh BIOS VM, written to downtime-stream.json; with --two-vcpus on a 2-vCPU VM only,
// downtime-stream-2vcpu.json), for a quick look at the install stream, and
// --parts uefi step 5 alone (downtime-uefi.json), with a third set of kexecs loaded without
// purgatory checks (with AB_LAB_SUPERVISE=0, reset in place: downtime-uefi-in-place.json; with
// AB_LAB_FIRMWARE_WAIT=S, the firmware waiting S seconds before each boot as a server's POST
// does: downtime-uefi-firmware-wait-Ss.json).
// Every plain restart also records the host's own split: issued → the old
// boot's last journal entry → the new kernel's start, and kernel start → sshd active.
//   npm run bench:downtime [-- --runs 3 --formats tar.zst,ext4-image --two-vcpus --parts stream|uefi]
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startHostWorkflow, follow } from '../client/follow.js';
import { hostStatus } from '../client/temporal.js';
import type { Profile } from '../lib/profile.js';
import { statusQuery, type WorkflowStatus } from '../lib/workflow-api.js';
import { ensureTemporal } from '../lab/command.js';
import { ensureImage, ensureRelease, ensureReleaseImage, startLab, type Lab } from '../lab/session.js';
import type { Layout } from '../lab/vm.js';
import { plainRestart, round, summarize, upgradeFigures, type RestartFigures } from './downtime-restarts.js';
import { streamFigures, streamFiguresTwoVcpus, vmFacts } from './downtime-stream.js';
import { machineFacts, writeResult } from './recorded.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const RUNS = Number(arg('runs', '3'));
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error(`--runs: ${arg('runs', '3')} is not a whole number from 1 to 20`);
const FORMATS = arg('formats', 'tar.zst,ext4-image').split(',');
for (const f of FORMATS) if (f !== 'tar.zst' && f !== 'ext4-image') throw new Error(`--formats: ${f} is not tar.zst or ext4-image`);
const WITH_IMAGE = FORMATS.includes('ext4-image');
const TWO_VCPUS = process.argv.includes('--two-vcpus');
const PARTS = arg('parts', 'all');
if (PARTS !== 'all' && PARTS !== 'stream' && PARTS !== 'uefi') throw new Error(`--parts: ${PARTS} is not all, stream or uefi`);
const POLL_MS = 1000;
const TIMINGS = { timings: { approvalTimeout: '1h', comebackDeadline: '10m', pollInterval: `${POLL_MS}ms`, healthTimeout: '2m' } };

const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);

async function upgrade(client: Client, profile: Profile): Promise<WorkflowStatus> {
  const handle = await startHostWorkflow(client, 'upgradeHost', profile, true);
  await follow(() => handle.query(statusQuery), (l) => console.error(l));
  const s = (await hostStatus(client, profile.name))!;
  if (s.state !== 'committed' || !s.downtime) throw new Error(`upgrade ended ${s.state}: ${s.reason ?? ''}`);
  return s;
}

type How = Parameters<typeof plainRestart>[1];

async function restarts(profile: Profile, how: How, what: string): Promise<RestartFigures[]> {
  return (await rounds(profile, [how], what))[how];
}

/**
 * RUNS rounds of the given restarts in that order, so that slow drifts of the VM fall on every
 * kind alike (successive kexecs inside one QEMU process took longer each time; a firmware
 * reboot starts a new QEMU process).
 */
async function rounds(profile: Profile, hows: How[], what: string): Promise<Record<How, RestartFigures[]>> {
  const out: Record<How, RestartFigures[]> = { reboot: [], kexec: [], 'kexec-no-checks': [] };
  for (let i = 1; i <= RUNS; i++) {
    for (const how of hows) {
      const r = await plainRestart(profile, how);
      const host = r.host ? `; host: to kernel ${r.host.toKernelS} s (shutdown ${r.host.shutdownS ?? '?'}, jump ${r.host.jumpS ?? '?'}), kernel → sshd ${r.host.kernelToSshdS} s` : '';
      log(`${what}, round ${i}/${RUNS}, ${how}: first answer ${round(r.firstAnswerS)} s, healthy ${round(r.healthyS)} s${host}`);
      out[how].push(r);
    }
  }
  return out;
}

async function withLab<T>(address: string, taskQueue: string, layout: Layout, f: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await startLab({ layout, name: `bench-${layout}`, workDir: mkdtempSync(join(tmpdir(), 'ab-bench-')), address, taskQueue });
  try {
    return await f(lab);
  } finally {
    await lab.down();
  }
}

const ratio = (a: number, b: number) => round(a / b);

async function main() {
  const address = await ensureTemporal();
  const client = new Client({ connection: await Connection.connect({ address }) });
  // This run's own task queue (startHostWorkflow reads the same variable as the worker).
  const taskQueue = `bench-${Date.now()}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  const loadBefore = loadavg();
  // Built (or found in the cache) before a VM starts: it takes the machine's CPU.
  const ext4 = WITH_IMAGE ? await ensureReleaseImage() : null;
  if (PARTS === 'stream') {
    await streamOnly(address, taskQueue, ext4, loadBefore);
    return client.connection.close();
  }
  if (PARTS === 'uefi') {
    await uefiOnly(address, taskQueue, loadBefore);
    return client.connection.close();
  }

  const bios = await withLab(address, taskQueue, 'bios', async (lab) => {
    const vm = await vmFacts(lab.vm, lab.image.layout);
    const upgrades: WorkflowStatus[] = [];
    const reboots: Record<'a' | 'b', RestartFigures[]> = { a: [], b: [] };
    for (let i = 1; i <= RUNS; i++) {
      log(`upgrade ${i}/${RUNS} with a firmware reboot`);
      const s = await upgrade(client, lab.profile(TIMINGS));
      const to = s.facts!.spare.name;
      log(`upgrade ${i}/${RUNS}: on slot ${to}, downtime ${round(s.downtime!.downtimeMs / 1000)} s`);
      upgrades.push(s);
      if (reboots[to].length === 0) reboots[to] = await restarts(lab.profile(TIMINGS), 'reboot', `plain reboot of slot ${to}`);
    }
    const last = upgrades.at(-1)!;
    log('image stream vs raw SSH vs local unpack (one vCPU)');
    const stream = await streamFigures(lab.profile(TIMINGS), lab.release.good, last.facts!.active.device, ext4);
    const kexecs = await restarts(lab.profile(TIMINGS), 'kexec', `plain kexec of slot ${last.facts!.spare.name}`);
    return { vm, upgrades, reboots, stream, kexecs };
  });
  const uefi = await uefiRestarts(address, taskQueue);
  await client.connection.close();
  // Alone on the machine: a second VM next to the first would take its CPU.
  let two = null;
  if (TWO_VCPUS) {
    log('the same stream figures on a 2-vCPU VM');
    two = await streamFiguresTwoVcpus(await ensureImage('bios'), (await ensureRelease()).good, ext4);
  }

  const ups = summarize(bios.upgrades.map(upgradeFigures));
  const plain = summarize([...bios.reboots.a, ...bios.reboots.b]);
  const biosKexec = summarize(bios.kexecs);
  const uefiReboot = summarize(uefi.reboots);
  const uefiKexec = summarize(uefi.kexecs);
  const hostSide = bios.upgrades.map((s) => s.downtime!.hostSide?.toSshdS ?? null);
  const result = {
    runs: RUNS,
    // Headline: medians of issued → healthy.
    upgradeDowntimeS: ups.healthyS.median,
    plainRebootS: plain.healthyS.median,
    ratio: ratio(ups.healthyS.median, plain.healthyS.median),
    firstAnswerRatio: ratio(ups.firstAnswerS.median, plain.firstAnswerS.median),
    kexecRatio: ratio(biosKexec.healthyS.median, plain.healthyS.median),
    kexecRatioUefi: ratio(uefiKexec.healthyS.median, uefiReboot.healthyS.median),
    upgrades: ups,
    plainReboots: { both: plain, a: summarize(bios.reboots.a), b: summarize(bios.reboots.b) },
    kexec: { bios: biosKexec, uefi: { reboot: uefiReboot, kexec: uefiKexec } },
    // Host's own account of each upgrade: shutdown → its sshd active (host clock).
    upgradeHostSideToSshdS: hostSide,
    imageBytes: bios.upgrades[0]!.install?.bytes ?? null,
    // The install stream on the one-vCPU BIOS VM (tar.zst, and the ext4 image in ext4Image).
    stream: bios.stream,
    streamTwoVcpus: two,
    formats: FORMATS,
    vms: { bios: bios.vm, uefi: uefi.vm },
    machine: machineFacts(loadBefore),
    date: new Date().toISOString(),
  };
  const out = writeResult('downtime.json', result);

  const spread = (s: ReturnType<typeof summarize>, k: 'firstAnswerS' | 'healthyS') => `${s[k].median} s (${s[k].min}–${s[k].max})`;
  const rows: [string, string, string][] = [
    [`upgrade (firmware), issued → healthy, median of ${RUNS}`, spread(ups, 'healthyS'), `ratio ${result.ratio} (goal ≤ 1.05)`],
    [`plain reboot, issued → healthy, median of ${plain.n}`, spread(plain, 'healthyS'), `slot a ${result.plainReboots.a.healthyS.median} s, slot b ${result.plainReboots.b.healthyS.median} s`],
    ['  issued → first answer: upgrade / plain', `${ups.firstAnswerS.median} / ${plain.firstAnswerS.median} s`, `ratio ${result.firstAnswerRatio}`],
    [`BIOS plain kexec, median of ${RUNS}`, spread(biosKexec, 'healthyS'), `ratio ${result.kexecRatio} to the plain reboot`],
    [`UEFI plain reboot / kexec, medians of ${RUNS}`, `${uefiReboot.healthyS.median} / ${uefiKexec.healthyS.median} s`, `kexecRatioUefi ${result.kexecRatioUefi} (goal < 0.8)`],
  ];
  printRows([...rows, ...streamRows(bios.stream)], out);
}

type Stream = Awaited<ReturnType<typeof streamFigures>>;

function streamRows(stream: Stream, vcpus = 1): [string, string, string][] {
  const rows: [string, string, string][] = [];
  for (const [label, f] of [['tar.zst', stream], ['ext4 image', stream.ext4Image]] as const) {
    if (!f) continue;
    rows.push(
      [`${label} stream (${vcpus} vCPU)`, `${f.streamS} s`, `ratio ${f.streamRatio} (goal ≤ 1.1)`],
      ['  raw ssh / local unpack or write', `${f.rawSshS} / ${f.localUnpackS} s`, ''],
    );
  }
  const img = stream.ext4Image;
  if (img) {
    rows.push(
      ['  image: zstd -d / b2sum / sha256sum alone (local)', `${img.parts.localDecompressS} / ${img.parts.localHashS} / ${img.parts.localSha256S} s`, ''],
      ['  image: stream without the host digest', `${img.parts.streamNoHashS} s`, ''],
      ['  image: raw + write + digest, one after another', `${img.serialSumS} s`, `stream ÷ that ${img.streamToSerialSum} (1 = no overlap)`],
      [`ext4 image pulled by the host, release.pull (${vcpus} vCPU)`, `${img.pull.pullStreamS} s`, `ratio ${img.pull.pullStreamRatio} (goal ≤ 1.1)`],
      ['  raw pull / local write / pulled without the host digest', `${img.pull.rawPullS} / ${img.localUnpackS} / ${img.pull.pullNoHashS} s`, ''],
    );
  }
  return rows;
}

function printRows(rows: [string, string, string][], out: string): void {
  for (const [a, b, c] of rows) console.log(`${a.padEnd(52)} ${b.padStart(22)}  ${c}`);
  console.log(`wrote ${out}`);
}

/**
 * Step 5: plain reboots and kexecs of the UEFI lab VM, alternating, so that every kexec is the
 * first in its QEMU process (under TCG each kexec'd boot leaves translations of its code that the
 * next one must drop as it writes over them); alone (--parts uefi) also kexecs loaded without
 * purgatory checks.
 */
function uefiRestarts(address: string, taskQueue: string) {
  return withLab(address, taskQueue, 'uefi', async (lab) => {
    const vm = await vmFacts(lab.vm, lab.image.layout);
    const hows: How[] = PARTS === 'uefi' ? ['reboot', 'kexec', 'reboot', 'kexec-no-checks'] : ['reboot', 'kexec'];
    const r = await rounds(lab.profile(TIMINGS), hows, 'UEFI');
    return { vm, reboots: r.reboot, kexecs: r.kexec, noChecks: r['kexec-no-checks'] };
  });
}

/** Step 5 alone (bench/results/downtime-uefi.json): where a UEFI restart's time goes, firmware or kexec. */
async function uefiOnly(address: string, taskQueue: string, loadBefore: number[]) {
  const { vm, reboots, kexecs, noChecks } = await uefiRestarts(address, taskQueue);
  const reboot = summarize(reboots);
  const kexec = summarize(kexecs);
  const kexecNoChecks = summarize(noChecks);
  const result = {
    runs: RUNS,
    kexecRatioUefi: ratio(kexec.healthyS.median, reboot.healthyS.median),
    kexecNoChecksRatioUefi: ratio(kexecNoChecks.healthyS.median, reboot.healthyS.median),
    reboot,
    kexec,
    kexecNoChecks,
    vm,
    machine: machineFacts(loadBefore),
    date: new Date().toISOString(),
  };
  // A firmware wait (AB_LAB_FIRMWARE_WAIT) stands for a server's POST: kept apart from the lab's own figures.
  const name = `downtime-uefi${result.machine.restartSupervisor ? '' : '-in-place'}${vm.firmwareWaitS ? `-firmware-wait-${vm.firmwareWaitS}s` : ''}.json`;
  const out = writeResult(name, result);
  const split = (s: ReturnType<typeof summarize>) =>
    s.hostMedians ? `host: issued → kernel ${s.hostMedians.toKernelS} s (shutdown ${s.hostMedians.shutdownS ?? '?'} + jump ${s.hostMedians.jumpS ?? '?'}), kernel → sshd ${s.hostMedians.kernelToSshdS} s` : '';
  printRows(
    [
      [`UEFI plain reboot, issued → healthy, median of ${reboots.length}`, `${reboot.healthyS.median} s (${reboot.healthyS.min}–${reboot.healthyS.max})`, split(reboot)],
      [`UEFI plain kexec, issued → healthy, median of ${kexecs.length}`, `${kexec.healthyS.median} s (${kexec.healthyS.min}–${kexec.healthyS.max})`, split(kexec)],
      [`UEFI kexec --no-checks, issued → healthy, median of ${noChecks.length}`, `${kexecNoChecks.healthyS.median} s (${kexecNoChecks.healthyS.min}–${kexecNoChecks.healthyS.max})`, split(kexecNoChecks)],
      ['kexecRatioUefi (file load / no checks)', `${result.kexecRatioUefi} / ${result.kexecNoChecksRatioUefi}`, '(goal < 0.8)'],
      ['firmware wait before each firmware boot (AB_LAB_FIRMWARE_WAIT)', `${vm.firmwareWaitS} s`, vm.firmwareWaitS ? 'standing for a server POST' : 'none: the lab firmware as it is'],
    ],
    out,
  );
}

/**
 * Step 3 alone, on a fresh BIOS VM: its spare is slot B, formatted and unused. With --two-vcpus
 * on a 2-vCPU VM instead (downtime-stream-2vcpu.json).
 */
async function streamOnly(address: string, taskQueue: string, ext4: Awaited<ReturnType<typeof ensureReleaseImage>> | null, loadBefore: number[]) {
  const { vm, stream } = TWO_VCPUS
    ? await streamFiguresTwoVcpus(await ensureImage('bios'), (await ensureRelease()).good, ext4)
    : await withLab(address, taskQueue, 'bios', async (lab) => {
        const spare = (await lab.vm.ssh('blkid -L ab-slot-b', { timeoutMs: 30_000 })).stdout.trim();
        if (!spare) throw new Error('no ab-slot-b on the lab VM');
        return { vm: await vmFacts(lab.vm, lab.image.layout), stream: await streamFigures(lab.profile(TIMINGS), lab.release.good, spare, ext4) };
      });
  const out = writeResult(TWO_VCPUS ? 'downtime-stream-2vcpu.json' : 'downtime-stream.json', {
    stream,
    formats: FORMATS,
    vm,
    machine: machineFacts(loadBefore),
    date: new Date().toISOString(),
  });
  printRows(streamRows(stream, TWO_VCPUS ? 2 : 1), out);
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
