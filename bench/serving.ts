// What the install costs a host that keeps serving. A stand-in service (a perl loop counting
// units of work; SERVICES) runs on a fresh one-vCPU BIOS lab VM while the ext4 image is written
// to its spare through the product's receiving script, over a bulk SSH connection as the
// install opens one: once at the service's own priority (install nice 0, io normal) and once at
// the product's default (nice 10, io low). In the same run and per round: the install alone both
// ways, then for each service kind the service alone and beside both installs. Figures: the service's
// rate during each install as a share of its rate alone, and each install's duration; medians
// of --runs (default 3).
//   npm run bench:serving [-- --runs 3]
// Writes bench/results/serving.json.
import { createReadStream, mkdtempSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashFile } from '../activities/image-digests.js';
import { connectForBulk, receiveImage } from '../activities/receive-image.js';
import { SshHost, targetFromProfile } from '../activities/ssh.js';
import type { InstallPriority } from '../lib/host-priority.js';
import { ensureImage, ensureRelease, ensureReleaseImage, labProfile } from '../lab/session.js';
import { startVm } from '../lab/vm.js';
import { median, patiently, round } from './downtime-restarts.js';
import { BENCH_LOCK, vmFacts } from './downtime-stream.js';
import { machineFacts, writeResult } from './recorded.js';

const i = process.argv.indexOf('--runs');
const RUNS = i > 0 ? Number(process.argv[i + 1]) : 3;
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error(`--runs: ${process.argv[i + 1]} is not a whole number from 1 to 20`);

const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);

const COUNT = '/dev/shm/ab-bench-service';
/**
 * Stand-in services, each counting units of arithmetic (about 12 ms each on the lab's emulated
 * CPU) and publishing the count (atomically, by rename) every 5 units: `busy` works without
 * pause, a saturated host; `paced` sleeps 20 ms after each unit, requests with idle time
 * between them (about 40 % of the CPU alone).
 */
const SERVICES = { busy: 0, paced: 0.02 } as const;
type ServiceKind = keyof typeof SERVICES;
const service = (sleepS: number) => `perl -e '
my $n = 0;
while (1) {
  my $x = 0; $x += $_ * $_ for 1 .. 20000;
  select(undef, undef, undef, ${sleepS}) if ${sleepS};
  next if ++$n % 5;
  open(my $f, ">", "${COUNT}.tmp") or die; print $f $n; close $f; rename("${COUNT}.tmp", "${COUNT}") or die;
}'`;

const AS_SERVICES: InstallPriority = { nice: 0, io: 'normal' };
const DEFAULT: InstallPriority = { nice: 10, io: 'low' };
const IDLE_WINDOW_MS = 10_000;

async function main() {
  const image = await ensureImage('bios');
  const release = (await ensureRelease()).good;
  const ext4 = await ensureReleaseImage();
  const loadBefore = loadavg();
  const vm = await startVm({ disk: image.disk, layout: image.layout, name: 'bench-serving', workDir: mkdtempSync(join(tmpdir(), 'ab-bench-')) });
  try {
    await vm.waitForSsh(480_000);
    const profile = labProfile(image, vm, release);
    const spare = (await vm.ssh('blkid -L ab-slot-b', { timeoutMs: 30_000 })).stdout.trim();
    if (!spare) throw new Error('no ab-slot-b on the lab VM');
    const h = await patiently(() => SshHost.connect(targetFromProfile(profile)));
    const digests = await hashFile(ext4.path);
    const count = async () => Number((await h.exec(['cat', COUNT], { timeoutMs: 60_000 })).stdout.trim() || 0);
    const fresh = () => h.script('set -eu; sync; echo 3 > /proc/sys/vm/drop_caches', [], { timeoutMs: 600_000 });
    // A bulk connection per install, as the runbook opens one: its sshd takes the install's priority.
    const install = async (priority: InstallPriority) => {
      await fresh();
      const t = Date.now();
      const bulk = await connectForBulk(h, profile);
      try {
        await receiveImage(bulk, createReadStream(ext4.path), 'ext4-image', digests, spare, BENCH_LOCK, priority);
      } finally {
        bulk.close();
      }
      return (Date.now() - t) / 1000;
    };
    /** The service's units per second while `during` runs, and what `during` returned. */
    const rateDuring = async <T>(during: () => Promise<T>): Promise<[number, T]> => {
      const [c0, t0] = [await count(), Date.now()];
      const r = await during();
      const [c1, t1] = [await count(), Date.now()];
      return [(c1 - c0) / ((t1 - t0) / 1000), r];
    };
    type Beside = { installS: number; service: number };
    type Round = { installAloneS: number; installAloneAtNice0S: number } & Record<ServiceKind, { serviceAlone: number; asServices: Beside; atDefault: Beside }>;
    const rounds: Round[] = [];
    /** One service kind beside the install both ways, after the service alone. */
    const beside = async (kind: ServiceKind, r: number) => {
      const pid = (await h.exec(['sh', '-c', `rm -f ${COUNT}; setsid nohup ${service(SERVICES[kind])} </dev/null >/dev/null 2>&1 & echo $!`], { timeoutMs: 60_000 })).stdout.trim();
      try {
        await patiently(async () => {
          if (!(await count())) throw new Error('the service has not counted yet');
        });
        // Alone before and after the installs, against drift within the round.
        const alone = async () => (await rateDuring(() => new Promise((res) => setTimeout(res, IDLE_WINDOW_MS))))[0];
        const before = await alone();
        const [s0, i0] = await rateDuring(() => install(AS_SERVICES));
        const [s1, i1] = await rateDuring(() => install(DEFAULT));
        const serviceAlone = (before + (await alone())) / 2;
        log(`round ${r + 1}, ${kind} service: alone ${round(serviceAlone)}/s; install at nice 0 ${i0} s, service ${round(s0)}/s; at nice 10 ${i1} s, service ${round(s1)}/s`);
        return { serviceAlone, asServices: { installS: i0, service: s0 }, atDefault: { installS: i1, service: s1 } };
      } finally {
        await h.exec(['kill', pid], { timeoutMs: 60_000 });
      }
    };
    try {
      for (let r = 0; r < RUNS; r++) {
        // Alone both ways, which goes first alternating by round: on an idle host the priority
        // should cost the install nothing.
        const [first, second] = r % 2 ? [AS_SERVICES, DEFAULT] : [DEFAULT, AS_SERVICES];
        const [a, b] = [await install(first), await install(second)];
        const [installAloneS, installAloneAtNice0S] = r % 2 ? [b, a] : [a, b];
        log(`round ${r + 1}: install alone ${installAloneS} s, at nice 0 ${installAloneAtNice0S} s`);
        rounds.push({ installAloneS, installAloneAtNice0S, busy: await beside('busy', r), paced: await beside('paced', r) });
      }
    } finally {
      h.close();
    }
    const m = (f: (x: Round) => number) => round(median(rounds.map(f)));
    const figures = (k: ServiceKind) => ({
      serviceAlonePerS: m((x) => x[k].serviceAlone),
      asServices: { installS: m((x) => x[k].asServices.installS), serviceShare: m((x) => x[k].asServices.service / x[k].serviceAlone) },
      atDefault: { installS: m((x) => x[k].atDefault.installS), serviceShare: m((x) => x[k].atDefault.service / x[k].serviceAlone) },
    });
    const result = {
      installAloneS: m((x) => x.installAloneS),
      installAloneAtNice0S: m((x) => x.installAloneAtNice0S),
      busy: figures('busy'),
      paced: figures('paced'),
      rounds,
      bytes: statSync(ext4.path).size,
      vm: await vmFacts(vm, image.layout),
      machine: machineFacts(loadBefore),
      date: new Date().toISOString(),
    };
    const out = writeResult('serving.json', result);
    const rows: [string, string][] = [
      ['install alone (ext4 image over SSH), default priority', `${result.installAloneS} s`],
      ['install alone, nice 0, io normal', `${result.installAloneAtNice0S} s`],
    ];
    for (const k of Object.keys(SERVICES) as ServiceKind[]) {
      const f = result[k];
      rows.push(
        [`${k} service alone`, `${f.serviceAlonePerS} units/s`],
        ['  beside an install at nice 0, io normal', `install ${f.asServices.installS} s, service at ${f.asServices.serviceShare} of its rate`],
        ['  beside an install at the default (nice 10, io low)', `install ${f.atDefault.installS} s, service at ${f.atDefault.serviceShare} of its rate`],
      );
    }
    for (const [a, b] of rows) console.log(`${a.padEnd(58)} ${b}`);
    console.log(`wrote ${out}`);
  } finally {
    await vm.stop();
  }
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).stack ?? e}`);
  process.exit(1);
});
