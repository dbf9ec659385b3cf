// The simulated fleet of the campaign benchmark: scripted fake hosts (test/helpers/fake-host.ts)
// behind the real activity interface, each activity taking the lab's measured time for its phase
// times a scale factor, jittered per host with a seeded generator, and a few hosts scripted to
// fail. Also the campaign file set (template, inventory, campaign file) that names them, so the
// benchmark goes through the same loader as `ab-upgrade campaign start`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Context } from '@temporalio/activity';
import type { HostActivities } from '../lib/contract.js';
import type { HostState } from '../lib/campaign-api.js';
import { FakeHost, routeByProfile, type FakeHostScript } from '../test/helpers/fake-host.js';

type ActivityName = keyof HostActivities;

/**
 * Seconds per phase on the lab VM (2-vCPU QEMU TCG guest), from bench/results/chaos.json (phase
 * durations of its runs) and bench/results/downtime.json; `assumed` ones were not recorded there.
 */
export const LAB_PHASE_S: Record<ActivityName | 'boot', { s: number; source: string; assumed?: true }> = {
  inspectHost: { s: 2.8, source: 'chaos.json: 2.6, 3.0' },
  prepareSpare: { s: 3.3, source: 'chaos.json: 2.7, 4.0' },
  installRelease: { s: 58, source: 'README chaos: 56–60 s without a fault (chaos.json: 48.7, 74.7)' },
  carryConfig: { s: 25.3, source: 'chaos.json: 24.0, 26.6' },
  addBootEntry: { s: 2.8, source: 'chaos.json: 2.4, 3.2' },
  finalSync: { s: 24.8, source: 'chaos.json' },
  trialBoot: { s: 3.5, source: 'chaos.json' },
  boot: { s: 42.9, source: 'downtime.json firstAnswerS: reboot issued → first answer' },
  awaitComeback: { s: 0, source: 'polls until the boot above ends' },
  checkHealth: { s: 3.58, source: 'downtime.json healthChecksS' },
  commitSlot: { s: 10, source: 'update-grub + grub-install; not recorded', assumed: true },
  measureHostDowntime: { s: 2, source: 'one journalctl over SSH; not recorded', assumed: true },
  probeHost: { s: 0.8, source: 'chaos.json rollback.probe' },
  rebootToSlot: { s: 3.5, source: 'as trialBoot' },
  removeBootEntry: { s: 1.6, source: 'chaos.json compensate.removeBootEntry' },
  powerReset: { s: 0.1, source: 'chaos.json rollback.powerReset' },
  carryBack: { s: 25.3, source: 'as carryConfig' },
};
/** The lab's comeback poll interval (bench/downtime.ts) and comeback deadline (chaos), in seconds. */
export const LAB_POLL_S = 1;
export const LAB_COMEBACK_DEADLINE_S = 600;
/** Each phase of each host takes its lab time × scale × a factor in [1 - JITTER, 1 + JITTER]. */
export const JITTER = 0.2;
/** workflows/activity-options.ts: inspect is tried 3 times, 2 s and then 4 s apart (not scaled). */
const INSPECT_RETRY_WAIT_S = 2 + 4;

/** How a host is scripted to end. */
export type Outcome = Extract<HostState, 'committed' | 'unreachable' | 'failed' | 'rolled-back'>;
/** Share of the fleet per failing outcome (at least one host each); the canary (first host) never fails. */
export const FAILURE_SHARE: Record<Exclude<Outcome, 'committed'>, number> = { unreachable: 0.02, failed: 0.01, 'rolled-back': 0.01 };

export interface ScriptedHost {
  name: string;
  outcome: Outcome;
  /** Milliseconds per activity (and `boot`: reboot issued → the host answers). */
  latencyMs: Record<ActivityName | 'boot', number>;
  /** What its script alone takes, start to end state (no queueing, no polling lag). */
  scriptedMs: number;
}

/** mulberry32: a small seeded generator, so every run scripts the same fleet. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const hostName = (i: number, n: number): string => `sim-${String(i + 1).padStart(String(n).length, '0')}`;

/** The time a host's script takes on its path (the activities its end state calls, in order). */
function scriptedMs(outcome: Outcome, l: ScriptedHost['latencyMs']): number {
  const upToInstall = l.inspectHost + l.prepareSpare + l.installRelease;
  if (outcome === 'unreachable') return 3 * l.inspectHost + INSPECT_RETRY_WAIT_S * 1000;
  if (outcome === 'failed') return upToInstall; // the install fails at its end; nothing to undo yet
  const toHealth = upToInstall + l.carryConfig + l.addBootEntry + l.finalSync + l.trialBoot + l.boot + l.checkHealth;
  if (outcome === 'committed') return toHealth + l.commitSlot + l.measureHostDowntime;
  // Unhealthy on the new slot: probe, SSH reboot home, comeback, health, GRUB compensation.
  return toHealth + l.probeHost + l.rebootToSlot + l.boot + l.checkHealth + l.removeBootEntry;
}

/** n hosts: latencies drawn per host and phase, a few % scripted to fail (deterministic for a seed). */
export function scriptFleet(n: number, scale: number, seed: number): ScriptedHost[] {
  const rand = rng(seed);
  const outcomes: Outcome[] = Array.from({ length: n }, () => 'committed');
  const candidates = Array.from({ length: n - 1 }, (_, i) => i + 1); // never the canary
  for (let i = candidates.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
  }
  for (const [outcome, share] of Object.entries(FAILURE_SHARE) as [Outcome, number][]) {
    for (let k = Math.max(1, Math.round(share * n)); k > 0 && candidates.length; k--) outcomes[candidates.pop()!] = outcome;
  }
  return outcomes.map((outcome, i) => {
    const latencyMs = Object.fromEntries(
      Object.entries(LAB_PHASE_S).map(([phase, { s }]) => [phase, Math.round(s * 1000 * scale * (1 - JITTER + 2 * JITTER * rand()))]),
    ) as ScriptedHost['latencyMs'];
    return { name: hostName(i, n), outcome, latencyMs, scriptedMs: scriptedMs(outcome, latencyMs) };
  });
}

/** The fake host's script for an outcome. */
function fakeScript(h: ScriptedHost): FakeHostScript {
  const base: FakeHostScript = { bootDelayMs: h.latencyMs.boot };
  if (h.outcome === 'failed') return { ...base, fail: { installRelease: 'debootstrap: E: Couldn\'t download packages (scripted failure)' } };
  if (h.outcome === 'rolled-back') return { ...base, healthFailsOn: ['b'] };
  return base;
}

/**
 * Sleeps like a command that takes `ms`, heartbeating at once and every 10 s as the real SSH
 * activities do while their commands run (their heartbeat timeout is 30 s).
 */
async function busy(ms: number): Promise<void> {
  const ctx = Context.current();
  for (let left = ms; left > 0; left -= 10_000) {
    ctx.heartbeat(ctx.info.heartbeatDetails);
    await ctx.sleep(Math.min(left, 10_000));
  }
}

/** The scripted hosts as fake hosts, each activity taking its scripted time before it acts. */
export class SimulatedFleet {
  readonly fakes = new Map<string, FakeHost>();
  private readonly acts = new Map<string, HostActivities>();

  constructor(readonly hosts: ScriptedHost[]) {
    for (const h of hosts) {
      const fake = new FakeHost(fakeScript(h));
      if (h.outcome === 'unreachable') fake.up = false;
      this.fakes.set(h.name, fake);
      const inner = fake.activities();
      const timed = Object.fromEntries(
        (Object.keys(inner) as ActivityName[]).map((name) => [
          name,
          async (...args: unknown[]) => {
            await busy(h.latencyMs[name]);
            return (inner[name] as (...a: unknown[]) => Promise<unknown>)(...args);
          },
        ]),
      ) as unknown as HostActivities;
      this.acts.set(h.name, timed);
    }
  }

  activities(): HostActivities {
    return routeByProfile((name) => this.acts.get(name));
  }

  dispose(): void {
    for (const f of this.fakes.values()) f.dispose();
  }
}

export interface CampaignFileOptions {
  name: string;
  hosts: ScriptedHost[];
  scale: number;
  waves: (number | string)[];
  failureBudget: number | string;
  approveEachWave: boolean;
  retryWithin: string;
}

// Durations in a profile are at least 100 ms (lib/duration.ts).
const ms = (x: number) => `${Math.max(100, Math.round(x))}ms`;

/**
 * Writes an inventory of the hosts, a profile template with the lab's timings scaled, and a
 * campaign file using both, into `dir`; returns the campaign file's path.
 */
export function writeCampaignFiles(dir: string, o: CampaignFileOptions): string {
  mkdirSync(dir, { recursive: true });
  const inventory = ['[fleet]', ...o.hosts.map((h) => h.name), '', '[fleet:vars]', 'ansible_host=192.0.2.10', ''].join('\n');
  const template = [
    'hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"',
    'auth: { identityFile: /nonexistent/id_ed25519 }',
    'slots: auto',
    'data: { device: /dev/vda4, mountPoint: /srv }',
    'release: { source: debootstrap, suite: trixie }',
    'power: { driver: qmp, socket: /run/fake-qmp.sock }',
    `timings: { comebackDeadline: ${ms(LAB_COMEBACK_DEADLINE_S * 1000 * o.scale)}, pollInterval: ${ms(LAB_POLL_S * 1000 * o.scale)}, healthTimeout: 2m }`,
    '',
  ].join('\n');
  const campaign = [
    `name: ${o.name}`,
    'inventory: fleet.ini',
    'template: template.yaml',
    `waves: ${JSON.stringify(o.waves)}`,
    `failureBudget: ${JSON.stringify(o.failureBudget)}`,
    `approveEachWave: ${o.approveEachWave}`,
    `retryWithin: ${o.retryWithin}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'fleet.ini'), inventory);
  writeFileSync(join(dir, 'template.yaml'), template);
  const path = join(dir, 'campaign.yaml');
  writeFileSync(path, campaign);
  return path;
}
