// After a reboot: is the host back (new boot_id, which slot is /), is it healthy, and how long
// were its services down as the host itself saw it.
import type { ComebackResult, HealthCheckResult, HealthReport, HostDowntime, ProbeResult, SlotName, TrialBootResult } from '../lib/contract.js';
import { deviceForSource, DEVICE_LINKS_SH, LSBLK_COLUMNS, parseDeviceLinks, parseLsblk, slotHolding } from '../lib/blockdev.js';
import { profileDeviceRefs } from '../lib/layout.js';
import type { Profile } from '../lib/profile.js';
import { onHost, sh } from './host-io.js';
import { cancellationSignal, heartbeat } from './progress.js';
import type { Socket } from 'node:net';
import { awaitSshGreeting } from './ssh-greeting.js';
import { isConnectionLoss, SshHost, targetFromProfile } from './ssh.js';

// Boot id, root source, the /dev/… links among the arguments (the profile's references), then
// lsblk's JSON, which runs to the end of the output.
const PROBE = `
cat /proc/sys/kernel/random/boot_id
findmnt -n -o SOURCE /
${DEVICE_LINKS_SH}
lsblk -J -b -o ${LSBLK_COLUMNS}
`;

/** Which slot a host runs, from its root device and the profile's slot names. */
export function slotFromProbe(profile: Profile, rootSource: string, lsblkJson: string, linksOut = ''): SlotName | null {
  const devices = parseLsblk(lsblkJson);
  const root = deviceForSource(rootSource, devices);
  return root ? slotHolding(root, profile.slots, devices, parseDeviceLinks(linksOut)) : null;
}

/**
 * How long a probe may take once sshd has greeted: a host that is still booting, or an emulated
 * one, may need far longer for a key exchange and three commands than for its greeting, and
 * cutting it short would only start the handshake over.
 */
export const ANSWER_BOUND_MS = 60_000;

/**
 * One probe over a fresh connection (the pooled one died with the reboot): `timeoutMs` bounds
 * the wait for sshd's greeting, ANSWER_BOUND_MS the rest. `onGreeting` is told when sshd
 * answered. Aborting `signal` drops the connection (the host's sshd ends the probe's commands).
 */
export async function probeOnce(profile: Profile, timeoutMs = 10_000, signal?: AbortSignal, onGreeting?: () => void): Promise<ProbeResult> {
  let h: SshHost | null = null;
  let sock: Socket | null = null;
  const drop = () => (h?.close(), sock?.destroy());
  signal?.addEventListener('abort', drop, { once: true });
  try {
    sock = await awaitSshGreeting(profile.host, profile.port, timeoutMs, signal);
    onGreeting?.();
    h = await SshHost.connect({ ...targetFromProfile(profile), connectTimeoutMs: ANSWER_BOUND_MS }, { signal, sock });
    if (signal?.aborted) throw new Error('probe aborted');
    const out = await sh(h, PROBE, profileDeviceRefs(profile), { timeoutMs: ANSWER_BOUND_MS });
    const [bootId = '', rootSource = '', ...rest] = out.split('\n');
    const json = rest.findIndex((l) => l.startsWith('{'));
    const slot = slotFromProbe(profile, rootSource.trim(), rest.slice(json).join('\n'), rest.slice(0, json).join('\n'));
    return { reachable: true, bootId: bootId.trim(), slot, detail: `root ${rootSource.trim()}` };
  } catch (e) {
    // A changed host key is not "unreachable": the caller must see it and stop.
    if ((e as Error).name === 'HostKeyMismatchError') throw e;
    return { reachable: false, bootId: null, slot: null, detail: (e as Error).message.split('\n')[0] ?? 'unreachable' };
  } finally {
    signal?.removeEventListener('abort', drop);
    h?.close();
    sock?.destroy();
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}

/** At most this many probes in flight (each is bounded by its own connect/exec timeout). */
const MAX_PROBES_IN_FLIGHT = 4;
/** After sshd greets a probe, how long no other probe starts (see pollComeback). */
const GREETING_QUIET_MS = 10_000;

/**
 * Polls until a boot other than `bootIdBefore` answers. Ends only by success or cancellation.
 * A new probe starts every poll interval even while earlier ones still wait: while the host
 * boots, a connection can hang for its whole bound (a NAT or port forward accepts before sshd
 * is up), and waiting it out would add up to that bound to the measured downtime. Once sshd
 * has greeted a probe, no new one starts for GREETING_QUIET_MS: more handshakes would only take
 * CPU from a host that is busy booting (after that, probes resume, in case that host died
 * mid-handshake).
 */
export function awaitComeback(profile: Profile, bootIdBefore: string, pollIntervalMs: number): Promise<ComebackResult> {
  return pollComeback(profile, bootIdBefore, pollIntervalMs, cancellationSignal());
}

/** awaitComeback with an explicit stop signal (for callers outside an activity). */
export function pollComeback(profile: Profile, bootIdBefore: string, pollIntervalMs: number, signal?: AbortSignal): Promise<ComebackResult> {
  const probeTimeoutMs = Math.max(5_000, Math.min(pollIntervalMs * 2, 15_000));
  return new Promise<ComebackResult>((resolve, reject) => {
    let probes = 0;
    let inFlight = 0;
    let quietUntil = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    // The first answer ends the others: their handshakes and probe commands would take CPU
    // from the host's boot (and from the health checks that follow).
    const others = new AbortController();
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      others.abort();
      f();
    };
    const launch = () => {
      if (done) return;
      if (inFlight < MAX_PROBES_IN_FLIGHT && Date.now() >= quietUntil) {
        inFlight++;
        const n = ++probes;
        probeOnce(profile, probeTimeoutMs, others.signal, () => (quietUntil = Date.now() + GREETING_QUIET_MS)).then(
          (p) => {
            inFlight--;
            if (done) return;
            heartbeat({ probes: n, last: p.detail });
            if (!(p.reachable && p.bootId && p.bootId !== bootIdBefore)) return;
            if (!p.slot) finish(() => reject(new Error(`the host came back (boot ${p.bootId}) but its root is on neither slot (${p.detail})`)));
            else finish(() => resolve({ bootId: p.bootId!, slot: p.slot!, rootDevice: p.detail.replace(/^root /, ''), answeredAt: Date.now(), probes: n }));
          },
          (e: unknown) => (inFlight--, finish(() => reject(e))),
        );
      }
      timer = setTimeout(launch, pollIntervalMs);
    };
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener('abort', () => finish(() => reject(signal.reason)), { once: true });
    launch();
  });
}

const SYSTEM_STATE = `
cat /proc/sys/kernel/random/boot_id
state=$(timeout "$1" systemctl is-system-running --wait 2>/dev/null || true)
echo "$state"
systemctl --failed --no-legend --plain --no-pager 2>/dev/null | awk '{print $1}' | tr '\\n' ' '
`;

/** One round's checks, and the boot they ran on (null when sshd could not be reached). */
interface Round {
  bootId: string | null;
  checks: HealthCheckResult[];
}

async function runChecks(h: SshHost, profile: Profile, waitS: number): Promise<Round> {
  const checks: HealthCheckResult[] = [];
  const [bootId = '', state = '', failed = ''] = (await sh(h, SYSTEM_STATE, [String(waitS)], { timeoutMs: (waitS + 10) * 1000 })).split('\n');
  checks.push({
    name: 'system booted',
    ok: state === 'running' || state === 'degraded',
    detail: `systemd: ${state || 'unknown'}${failed.trim() ? `; failed units: ${failed.trim()}` : ''}`,
  });
  for (const unit of profile.health.units) {
    // "--": a unit name may start with "-" (-.mount), which systemctl would take for an option.
    const r = await h.exec(['systemctl', 'is-active', '--', unit], { check: false, timeoutMs: 15_000 });
    checks.push({ name: `unit ${unit}`, ok: r.stdout.trim() === 'active', detail: r.stdout.trim() || r.stderr.trim() });
  }
  if (profile.health.tcpPorts.length) {
    const listening = (await h.exec(['ss', '-Hltn'], { timeoutMs: 15_000 })).stdout;
    const ports = new Set([...listening.matchAll(/\S+:(\d+)\s+\S+\s*$/gm)].map((m) => Number(m[1])));
    for (const port of profile.health.tcpPorts)
      checks.push({ name: `tcp ${port}`, ok: ports.has(port), detail: ports.has(port) ? 'listening' : 'nothing listens' });
  }
  for (const c of profile.health.commands) {
    // "--": a command may start with "-", which sh would take for an option.
    const r = await h.exec(['sh', '-c', '--', c.run], { check: false, timeoutMs: c.timeout });
    const out = (r.stdout + r.stderr).trim().split('\n').slice(-3).join(' | ');
    checks.push({
      name: c.name ?? `command ${c.run}`,
      ok: r.exitCode === 0,
      detail: r.timedOut ? `timed out after ${c.timeout}ms` : `exit ${r.exitCode ?? 'unknown'}${out ? `: ${out}` : ''}`,
    });
  }
  return { bootId: bootId.trim(), checks };
}

/**
 * One round of checks. A host that cannot be reached, or drops the connection mid-round, fails
 * the round instead of the activity: a new boot's sshd may still be starting, or restart once
 * (a late network, a package's postinst), and healthTimeout, not a few quick retries, is what
 * the profile gives it. Refused credentials and a changed host key end the activity.
 */
async function checkRound(profile: Profile, waitS: number): Promise<Round> {
  try {
    return await onHost(profile, (h) => runChecks(h, profile, waitS));
  } catch (e) {
    if (!isConnectionLoss(e)) throw e;
    return { bootId: null, checks: [{ name: 'ssh', ok: false, detail: (e as Error).message.split('\n')[0]! }] };
  }
}

/** The host booted again while its health was being checked: the checks no longer speak for the boot that came back. */
export class HostRebootedError extends Error {
  override name = 'HostRebootedError';
}

/**
 * Runs the checks until all pass or healthTimeout passes; reports the last round. Every round
 * must run on one boot: `bootId` (the one that came back), or else the first one a round
 * reaches. A host that reboots meanwhile (a reset, a watchdog, a crash) may come back on
 * another slot, where passing checks would say nothing about the slot under trial.
 */
export async function checkHealth(profile: Profile, bootId?: string): Promise<HealthReport> {
  const deadline = Date.now() + profile.timings.healthTimeout;
  const signal = cancellationSignal();
  let boot = bootId;
  for (let round = 1; ; round++) {
    const left = Math.max(1, Math.round((deadline - Date.now()) / 1000));
    const { bootId: ranOn, checks } = await checkRound(profile, Math.min(left, 60));
    if (ranOn) {
      boot ??= ranOn;
      if (ranOn !== boot) throw new HostRebootedError(`the host booted again during its health checks: boot ${boot} was checked, boot ${ranOn} answers now`);
    }
    heartbeat({ round, failing: checks.filter((c) => !c.ok).map((c) => c.name) });
    const ok = checks.every((c) => c.ok);
    if (ok || Date.now() >= deadline) return { ok, checks, checkedAt: Date.now() };
    await sleep(Math.min(2_000, Math.max(0, deadline - Date.now())), signal);
  }
}

// Realtime of "active" for units: boot realtime + ActiveEnterTimestampMonotonic.
/** Args: units. Prints the host's clock and uptime, then each unit's ActiveEnterTimestampMonotonic (µs since boot). */
export const UNIT_TIMES = `
now=$(date +%s.%N); up=$(cut -d' ' -f1 /proc/uptime)
echo "$now $up"
for u in "$@"; do echo "$u $(systemctl show -P ActiveEnterTimestampMonotonic -- "$u" 2>/dev/null || echo 0)"; done
`;

export async function measureHostDowntime(profile: Profile, trial?: TrialBootResult): Promise<HostDowntime> {
  if (!trial?.hostIssuedAtS) return { toSshdS: null, toServicesS: null };
  const units = ['ssh.service', ...profile.health.units];
  const out = await onHost(profile, (h) => sh(h, UNIT_TIMES, units));
  const [head = '', ...lines] = out.trim().split('\n');
  const [now, up] = head.split(' ').map(Number);
  const bootRealtime = now! - up!;
  const activeAt = (line: string) => {
    const mono = Number(line.split(' ').at(-1));
    return mono > 0 ? bootRealtime + mono / 1e6 : null;
  };
  const times = lines.map(activeAt);
  const sshd = times[0] ?? null;
  const services = times.slice(1);
  const round = (s: number) => Math.round(s * 10) / 10;
  return {
    toSshdS: sshd === null ? null : round(sshd - trial.hostIssuedAtS),
    toServicesS:
      services.length && services.every((t) => t !== null)
        ? round(Math.max(sshd ?? 0, ...(services as number[])) - trial.hostIssuedAtS)
        : sshd === null
          ? null
          : round(sshd - trial.hostIssuedAtS),
  };
}
