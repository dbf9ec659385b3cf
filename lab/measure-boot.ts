// Measures the lab VM's boot times: cold boot to SSH, guest reboots (`systemctl reboot`), QMP
// resets and kexecs of the running kernel to a new boot_id, with or without the restart
// supervisor. Each boot also records, from the guest: kernel start → sshd active, and the
// clocksource the kernel chose (with "tsc-unstable" if it stopped trusting the TSC); under TCG,
// from QEMU (`info jit`): how many translated blocks it invalidated and how often it flushed its
// translation cache since the boot before was measured (guest writes to memory that holds
// translated code invalidate it).
//
//   npx tsx lab/measure-boot.ts [bios|uefi] [--supervise=0|1] [--reboots=N] [--resets=N] [--kexecs=N]
//
// Builds (or reuses) the image with lab/build-image.sh. Prints one JSON line per measurement
// and a summary.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpConnection, QmpPowerDriver } from '../activities/power.js';
import { shQuote } from '../lib/quote.js';
import { KEXEC_SELF } from './kexec-self.js';
import { startVm, type Layout } from './vm.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const layout = (argv.find((a) => a === 'bios' || a === 'uefi') ?? 'bios') as Layout;
const opt = (name: string, def: number): number => {
  const a = argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.split('=')[1]) : def;
};
const supervise = opt('supervise', 1) === 1;
const reboots = opt('reboots', 2);
const resets = opt('resets', 1);
const kexecs = opt('kexecs', 0);

// Loads the running kernel again as the downtime benchmark does, then jumps from a detached
// shell, so the SSH session ends before the connection does.
const KEXEC_NOW = `bash -c ${shQuote(KEXEC_SELF)} kexec-self checks && setsid -f sh -c 'sleep 1; systemctl kexec' >/dev/null 2>&1 < /dev/null`;
const BOOT_FACTS = `echo "$(systemctl show -P ActiveEnterTimestampMonotonic ssh.service)" \
  "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)" \
  "$(journalctl -q --no-pager -k -b 0 | grep -c 'Marking TSC unstable')"`;

const outDir = execFileSync('bash', [path.join(here, 'build-image.sh'), layout], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  .trim()
  .split('\n')
  .pop()!;
const work = mkdtempSync(path.join(tmpdir(), 'ab-lab-measure-'));
const results: object[] = [];

/** QEMU's running totals of TB invalidations and translation-cache flushes (TCG only). */
async function jitCounts(): Promise<{ pid: number; invalidated: number; flushes: number } | null> {
  if (vm.accel !== 'tcg') return null;
  const c = await QmpConnection.connect(vm.qmpSocket, { timeoutMs: 15_000 });
  try {
    const out = String((await c.execute('human-monitor-command', { 'command-line': 'info jit' })).return ?? '');
    const count = (name: string) => Number(new RegExp(`${name}\\s+(\\d+)`).exec(out)?.[1] ?? NaN);
    return { pid: vm.pid, invalidated: count('TB invalidate count'), flushes: count('TB flush count') };
  } finally {
    c.close();
  }
}
let jitBefore: Awaited<ReturnType<typeof jitCounts>> = null;

const record = async (what: string, t0: number) => {
  const seconds = Math.round((Date.now() - t0) / 100) / 10;
  // Totals are per QEMU process: after the supervisor started a new one, the whole total is this boot's.
  const jit = await jitCounts();
  const sameQemu = jit && jitBefore && jit.pid === jitBefore.pid;
  const tcg = jit && { tbInvalidated: jit.invalidated - (sameQemu ? jitBefore!.invalidated : 0), tbFlushes: jit.flushes - (sameQemu ? jitBefore!.flushes : 0), newQemu: !sameQemu };
  jitBefore = jit;
  const [sshdUs = '', clock = '?', tscUnstable = '?'] = (await vm.ssh(BOOT_FACTS, { timeoutMs: 60_000 })).stdout.trim().split(' ');
  const r = { layout, supervise, what, seconds, kernelToSshdS: Math.round(Number(sshdUs) / 1e5) / 10, clock, tscUnstable: tscUnstable !== '0', ...tcg };
  results.push(r);
  console.log(JSON.stringify(r));
};

const t0 = Date.now();
const vm = await startVm({ disk: path.join(outDir, 'disk.raw'), layout, name: `measure-${layout}`, workDir: work, supervise });
try {
  let boot = await vm.waitForSsh(300_000);
  await record('cold boot to ssh', t0);
  for (let i = 0; i < reboots; i++) {
    const t = Date.now();
    await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    await record('guest reboot to ssh', t);
  }
  const power = new QmpPowerDriver(vm.qmpSocket);
  for (let i = 0; i < resets; i++) {
    const t = Date.now();
    await power.reset();
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    await record('qmp reset to ssh', t);
  }
  for (let i = 0; i < kexecs; i++) {
    const t = Date.now();
    const load = await vm.ssh(KEXEC_NOW, { timeoutMs: 60_000 });
    if (load.code !== 0) throw new Error(`kexec load failed: ${load.stderr.trim()}`);
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    await record('kexec to ssh', t);
  }
  console.log(JSON.stringify({ layout, supervise, restarts: vm.restarts, results }));
} finally {
  await vm.stop();
  rmSync(work, { recursive: true, force: true });
}
