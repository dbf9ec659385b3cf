// Measures the lab VM's boot times: cold boot to SSH, guest reboots (`systemctl reboot`) and
// QMP resets to a new boot_id, with or without the restart supervisor.
//
//   npx tsx lab/measure-boot.ts [bios|uefi] [--supervise=0|1] [--reboots=N] [--resets=N]
//
// Builds (or reuses) the image with lab/build-image.sh. Prints one JSON line per measurement
// and a summary.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QmpPowerDriver } from '../activities/power.js';
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

const outDir = execFileSync('bash', [path.join(here, 'build-image.sh'), layout], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  .trim()
  .split('\n')
  .pop()!;
const work = mkdtempSync(path.join(tmpdir(), 'ab-lab-measure-'));
const results: { what: string; seconds: number }[] = [];
const record = (what: string, t0: number) => {
  const r = { layout, supervise, what, seconds: Math.round((Date.now() - t0) / 100) / 10 };
  results.push(r);
  console.log(JSON.stringify(r));
};

const t0 = Date.now();
const vm = await startVm({ disk: path.join(outDir, 'disk.raw'), layout, name: `measure-${layout}`, workDir: work, supervise });
try {
  let boot = await vm.waitForSsh(300_000);
  record('cold boot to ssh', t0);
  for (let i = 0; i < reboots; i++) {
    const t = Date.now();
    await vm.ssh('systemctl reboot', { timeoutMs: 15_000 });
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    record('guest reboot to ssh', t);
  }
  const power = new QmpPowerDriver(vm.qmpSocket);
  for (let i = 0; i < resets; i++) {
    const t = Date.now();
    await power.reset();
    boot = await vm.waitForSsh(400_000, { notBootId: boot });
    record('qmp reset to ssh', t);
  }
  console.log(JSON.stringify({ layout, supervise, restarts: vm.restarts, results }));
} finally {
  await vm.stop();
  rmSync(work, { recursive: true, force: true });
}
