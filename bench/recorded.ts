// What the lab benchmarks record beside their figures, and where: the controller's facts and
// bench/results/<name>.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, hostname, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round } from './downtime-restarts.js';

/**
 * The controller and how the lab restarted its VMs: with the restart supervisor (the default)
 * a firmware reboot starts a new QEMU process, and a kexec stays in the running one;
 * AB_LAB_SUPERVISE=0 resets in place, so both kinds of restart run in one warm process.
 */
export function machineFacts(loadBefore: number[]) {
  return {
    host: hostname(),
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? '?',
    loadavgBefore: loadBefore.map(round),
    loadavgAfter: loadavg().map(round),
    restartSupervisor: process.env.AB_LAB_SUPERVISE !== '0',
  };
}

/** Writes `result` as bench/results/<name>; returns the path. */
export function writeResult(name: string, result: unknown): string {
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', name);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  return out;
}
