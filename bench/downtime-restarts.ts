// Restarts measured exactly as the runbook measures its own: the reboot issued by the runbook's
// own command (activities/boot.ts issueReboot), the first answer from the same comeback poll at
// the same interval, then the same health checks; nothing else of ours in the loop. A plain
// reboot goes through the firmware; a plain kexec loads the running kernel and skips it.
import { checkHealth, pollComeback, probeOnce, UNIT_TIMES } from '../activities/health.js';
import { sh } from '../activities/host-io.js';
import { issueReboot } from '../activities/boot.js';
import { SshHost, targetFromProfile } from '../activities/ssh.js';
import { KEXEC_SELF } from '../lab/kexec-self.js';
import type { Profile } from '../lib/profile.js';
import type { WorkflowStatus } from '../lib/workflow-api.js';

/** Seconds from the reboot being issued to the first SSH answer of the new boot, and to healthy. */
export interface RestartFigures {
  firstAnswerS: number;
  healthyS: number;
  /**
   * The host's own clock: from the restart being issued to the new kernel's start (shutdown, then
   * firmware and boot loader, or the kexec jump), and from there to its sshd being active. That
   * first part is split at the old boot's last journal entry: shutdownS up to it, jumpS from it to
   * the new kernel (the last steps of the shutdown after journald stops, then the firmware and boot
   * loader, or kexec's jump and its purgatory's checksum of the loaded kernel and initrd).
   */
  host?: { toKernelS: number; kernelToSshdS: number; shutdownS?: number | null; jumpS?: number | null } | null;
}

// The realtime of the previous boot's last journal entry (empty without a persistent journal).
const LAST_ENTRY_OF_PREVIOUS_BOOT = `journalctl -q --no-pager -b -1 -n 1 -o short-unix 2>/dev/null | cut -d' ' -f1`;

const RESTART_BOUND_MS = 10 * 60_000;

/** kexec-no-checks: a kexec loaded with kexec_load --no-checks (see KEXEC_SELF). */
export async function plainRestart(profile: Profile, how: 'reboot' | 'kexec' | 'kexec-no-checks'): Promise<RestartFigures> {
  const verb = how === 'reboot' ? 'reboot' : 'kexec';
  const before = await probeOnce(profile);
  if (!before.bootId) throw new Error(`plain ${verb}: the host does not answer before it: ${before.detail}`);
  const h = await patiently(() => SshHost.connect(targetFromProfile(profile)));
  let issuedAt: number;
  let hostIssuedAtS: number | null;
  try {
    if (how !== 'reboot') await h.script(KEXEC_SELF, [how === 'kexec' ? 'checks' : 'no-checks'], { timeoutMs: 120_000 });
    ({ issuedAt, hostIssuedAtS } = await issueReboot(h, verb, `benchmark: plain ${verb}`));
  } finally {
    h.close();
  }
  const giveUp = AbortSignal.timeout(RESTART_BOUND_MS);
  const back = await pollComeback(profile, before.bootId, profile.timings.pollInterval, giveUp).catch((e: unknown) => {
    throw giveUp.aborted ? new Error(`plain ${verb}: the host did not come back within ${RESTART_BOUND_MS / 60_000} min`) : e;
  });
  const health = await patiently(() => checkHealth(profile));
  if (!health.ok) throw new Error(`plain ${verb}: unhealthy after it: ${health.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`).join(', ')}`);
  const host = hostIssuedAtS === null ? null : await patiently(() => hostSplit(profile, hostIssuedAtS));
  return { firstAnswerS: (back.answeredAt - issuedAt) / 1000, healthyS: (health.checkedAt - issuedAt) / 1000, host };
}

async function hostSplit(profile: Profile, hostIssuedAtS: number): Promise<RestartFigures['host']> {
  const h = await SshHost.connect(targetFromProfile(profile));
  try {
    const [head = '', sshd = ''] = (await sh(h, UNIT_TIMES, ['ssh.service'])).trim().split('\n');
    const [now, up] = head.split(' ').map(Number);
    const kernelStartS = now! - up!;
    const sshdMono = Number(sshd.split(' ').at(-1)) / 1e6;
    if (!(sshdMono > 0)) return null;
    const lastOld = Number((await sh(h, LAST_ENTRY_OF_PREVIOUS_BOOT, [])).trim());
    const split = lastOld > hostIssuedAtS && lastOld < kernelStartS ? { shutdownS: round(lastOld - hostIssuedAtS), jumpS: round(kernelStartS - lastOld) } : { shutdownS: null, jumpS: null };
    return { toKernelS: round(kernelStartS - hostIssuedAtS), kernelToSshdS: round(sshdMono), ...split };
  } finally {
    h.close();
  }
}

/**
 * A connection (or health check) right after an upgrade or a restart, tried up to 12 times 5 s apart (as the
 * runbook's activities are retried): twice, right after a probe had answered, the next
 * connection was dropped before the SSH handshake, which ended a whole benchmark run. (A
 * guess, not confirmed: QEMU's port forward hands the booting guest's sshd the connections it
 * held for earlier probes, which then count against sshd's MaxStartups until they time out.)
 */
export async function patiently<T>(f: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if (attempt === 12 || (e as Error).name === 'HostKeyMismatchError') throw e;
      console.error(`bench: ${(e as Error).message.split('\n')[0]}; again in 5 s`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

/** The same two figures from a committed upgrade's own record. */
export function upgradeFigures(s: WorkflowStatus): RestartFigures {
  const d = s.downtime;
  if (!d) throw new Error(`upgrade ${s.state} without a downtime record`);
  return { firstAnswerS: (d.answeredAt - d.issuedAt) / 1000, healthyS: d.downtimeMs / 1000 };
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const round = (x: number): number => Math.round(x * 100) / 100;

/** Median, min and max of each figure over a set of restarts, rounded to 10 ms. */
export function summarize(runs: RestartFigures[]) {
  const of = (k: 'firstAnswerS' | 'healthyS') => {
    const xs = runs.map((r) => r[k]);
    return { median: round(median(xs)), min: round(Math.min(...xs)), max: round(Math.max(...xs)) };
  };
  const hostMedian = (k: 'toKernelS' | 'kernelToSshdS' | 'shutdownS' | 'jumpS') => {
    const xs = runs.map((r) => r.host?.[k]);
    return xs.every((x): x is number => typeof x === 'number') ? round(median(xs)) : null;
  };
  const split = runs.every((r) => r.host) ? { toKernelS: hostMedian('toKernelS'), kernelToSshdS: hostMedian('kernelToSshdS'), shutdownS: hostMedian('shutdownS'), jumpS: hostMedian('jumpS') } : null;
  return {
    n: runs.length,
    firstAnswerS: of('firstAnswerS'),
    healthyS: of('healthyS'),
    hostMedians: split,
    // Each run: first answer, healthy, then the host's toKernel, kernel → sshd, shutdown, jump.
    runs: runs.map((r) => [round(r.firstAnswerS), round(r.healthyS), r.host?.toKernelS ?? null, r.host?.kernelToSshdS ?? null, r.host?.shutdownS ?? null, r.host?.jumpS ?? null]),
  };
}
