// QEMU processes the lab started: none outlives the test process (an exit hook, and
// `setpriv --pdeathsig` where available), and one left by a crashed run of the same VM
// directory is ended before a new one starts.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

export const live = new Set<ChildProcess>();
let exitHookInstalled = false;
export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A VM never outlives the test process. ('exit' handlers must be synchronous.)
  process.on('exit', () => {
    for (const c of live) {
      try {
        if (c.pid) process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

let setprivPdeathsig: boolean | null = null;
export function hasSetprivPdeathsig(): boolean {
  if (setprivPdeathsig === null) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 5000 });
    setprivPdeathsig = r.status === 0 && /--pdeathsig/.test(r.stdout);
  }
  return setprivPdeathsig;
}

export function killStale(pidFile: string, dir: string): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1) return;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // Only a QEMU whose command line names this VM's own directory.
    if (cmdline.includes('qemu-system') && cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
  } catch {
    /* not running */
  }
}
