// Processes this chaos run started (worker children, lab VMs, the Temporal dev server) and the
// run's abort flag, so they can be stopped on exit, Ctrl-C and SIGTERM; the handlers for those
// are installed only when main() calls installStopHandlers().
import type { ChildProcess } from 'node:child_process';
import type { VmHandle } from '../../lab/vm.js';
import { hasSetprivPdeathsig } from '../../lab/vm/qemu-processes.js';
import type { DevServer } from '../../test/helpers/temporal.js';
import { log } from './options.js';

export const liveChildren = new Set<ChildProcess>();
export const liveVms = new Set<VmHandle>();
export let server: DevServer | undefined;
export let aborting = false;

/** Sets `server` (the modules that import it cannot assign it themselves). */
export function setServer(s: DevServer): void {
  server = s;
}

export async function stopEverything(): Promise<void> {
  for (const c of liveChildren) c.kill('SIGKILL');
  await Promise.all([...liveVms].map((vm) => vm.stop().catch(() => undefined)));
  await server?.stop().catch(() => undefined);
}

/** Installed by main() only, so importing this file (tests) changes no process behaviour. */
export function installStopHandlers(): void {
  process.on('exit', () => {
    // Synchronous last resort (QEMU has its own hook in lab/vm.ts).
    for (const pid of [...[...liveChildren].map((c) => c.pid), server?.child.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (aborting) process.exit(130);
      aborting = true;
      log(`${sig}: stopping the VM, the worker and the Temporal server this run started`);
      const hard = setTimeout(() => process.exit(130), 30_000);
      void stopEverything().finally(() => {
        clearTimeout(hard);
        process.exit(130);
      });
    });
  }
}

/** argv wrapped so the child is SIGKILLed if this process dies without cleaning up. */
export function withPdeathsig(argv: string[]): string[] {
  return hasSetprivPdeathsig() ? ['setpriv', '--pdeathsig', 'KILL', '--', ...argv] : argv;
}
