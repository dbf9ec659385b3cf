// Fault injection on the lab VM. Each case runs one upgradeHost (or rollbackHost) on a fresh
// BIOS lab VM (a new qcow2 overlay over the cached image, or over a cached image of a host
// already committed on slot B for the rollbackHost cases), injects ONE fault at one point, lets
// the system recover, waits for the workflow to end and then checks ON THE HOST, over the
// OpenSSH client with the pinned host key, that it is in one of the two allowed end states:
//
//   new-slot  committed on the new slot: the running root is the new slot, os-release is the
//             new release's, grubenv's saved_entry names the new slot's entry and no one-time
//             entry is pending; a plain reboot comes back on the new slot.
//   old-slot  back on the old slot with GRUB exactly restored: os-release as before the
//             workflow started, and grub.cfg, custom.cfg (or its absence) and /etc/default/grub
//             byte for byte (sha256) what they were before it started. grubenv byte for byte
//             too, with one tolerance: an empty `next_entry=` line, which GRUB's own boot script
//             writes when it consumes a one-time entry (it selects nothing; rollbackHost has no
//             GRUB compensation, so a rollback it abandons leaves that line); every other byte,
//             saved_entry included, must be the same, and the file keeps its size. A plain
//             reboot comes back on the old slot.
//
// Anything else (another slot, another release, a changed GRUB file, a host that no longer
// answers with its pinned key) is a third state, and the workflow's own final state must agree
// with the host's (committed ↔ new-slot; rolled-back, rejected, failed or cancelled ↔ old-slot).
//
// Faults: the worker process SIGKILLed (a new worker process is started at once); the Temporal
// dev server SIGKILLed and started again on the same SQLite database; the SSH sessions of the
// worker cut on the host (their sshd session processes killed from another SSH session, never
// the listener); the new slot's SSH host key changed (it must never be trusted silently).
// Points are detected from the workflow's status query (its phase) or from markers on the host
// (a bounded wait loop run on the host), never by a sleep alone.
//
// Every wait is bounded in time and count; Ctrl-C (or SIGTERM) stops the VM, the worker and the
// Temporal server this run started. Results are merged per case into bench/results/chaos.json,
// so a long matrix can be run in parts.
//   npm run chaos -- --list
//   npm run chaos -- --cases=kill-install-mid,server-approval
//   npm run chaos                     every case not yet in chaos.json (--redo: all of them)
//   options: --case-timeout-min=75 (per case), --manifest (also compare the old slot's files),
//            --results=<file> (instead of bench/results/chaos.json)
//   npm run chaos -- --self-test      the harness without a VM (see selfTest)
//   npm run chaos -- --table          chaos.json as the README's markdown table
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { QmpPowerDriver } from '../activities/power.js';
import { awaitSshGreeting } from '../activities/ssh-greeting.js';
import { startHostWorkflow } from '../client/follow.js';
import { connectClient } from '../client/temporal.js';
import type { Profile, ProfileInput } from '../lib/profile.js';
import {
  approveUpdate,
  hostRecoveredSignal,
  isFinalState,
  rejectUpdate,
  statusQuery,
  type PhaseName,
  type WorkflowState,
  type WorkflowStatus,
} from '../lib/workflow-api.js';
import { bootLab, ensureImage, ensureRelease, labProfile, type LabImage, type LabRelease } from '../lab/session.js';
import type { VmHandle } from '../lab/vm.js';
import { finalStatus, grubFiles, hostSlot, onVm, plainReboot, slotManifest } from '../test/helpers/lab-env.js';
import { startDevServer, type DevServer } from '../test/helpers/temporal.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the runbook mounts the spare on the host (activities/host-io.ts SPARE_MNT). */
const SPARE = '/run/ab-upgrade/spare';
/** Unpacked MB on the spare that count as "mid-install" (the lab release unpacks to about 290 MB). */
const INSTALL_MARK_MB = 120;
const POLL_MS = 300;

// ---------------------------------------------------------------------------------------------
// Options

function opt(name: string): string | undefined {
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (eq) return eq.slice(name.length + 3);
  const i = process.argv.indexOf(`--${name}`);
  const next = i > 0 ? process.argv[i + 1] : undefined;
  return next !== undefined && !next.startsWith('--') ? next : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const RESULTS = resolve(opt('results') ?? join(ROOT, 'bench', 'results', 'chaos.json'));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const round = (x: number) => Math.round(x * 10) / 10;
const t0 = Date.now();
const log = (msg: string) => {
  const s = Math.round((Date.now() - t0) / 1000);
  const hms = `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  console.error(`[chaos ${hms}] ${msg}`);
};

// ---------------------------------------------------------------------------------------------
// Processes this run started, stopped on exit, Ctrl-C and SIGTERM

const liveChildren = new Set<ChildProcess>();
const liveVms = new Set<VmHandle>();
let server: DevServer | undefined;
let aborting = false;

async function stopEverything(): Promise<void> {
  for (const c of liveChildren) c.kill('SIGKILL');
  await Promise.all([...liveVms].map((vm) => vm.stop().catch(() => undefined)));
  await server?.stop().catch(() => undefined);
}

/** Installed by main() only, so importing this file (tests) changes no process behaviour. */
function installStopHandlers(): void {
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

let setprivOk: boolean | null = null;
/** argv wrapped so the child is SIGKILLed if this process dies without cleaning up. */
function withPdeathsig(argv: string[]): string[] {
  if (setprivOk === null) {
    const r = spawnSync('setpriv', ['--help'], { encoding: 'utf8', timeout: 5000 });
    setprivOk = r.status === 0 && /--pdeathsig/.test(r.stdout);
  }
  return setprivOk ? ['setpriv', '--pdeathsig', 'KILL', '--', ...argv] : argv;
}

// ---------------------------------------------------------------------------------------------
// The real worker (worker/main.ts) as its own process

class WorkerProcess {
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    liveChildren.add(child);
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ?? `exit ${code}`;
        liveChildren.delete(child);
        res();
      }),
    );
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }
  get exit(): string | undefined {
    return this.exitInfo;
  }

  /** Starts worker/main.ts; resolves once it says it polls the task queue (bounded). */
  static async start(address: string, taskQueue: string, logFile: string, readyTimeoutMs = 240_000): Promise<WorkerProcess> {
    const fd = openSync(logFile, 'a');
    const argv = withPdeathsig([process.execPath, join(ROOT, 'bin/run-ts.js'), join(ROOT, 'worker/main.ts')]);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, TEMPORAL_ADDRESS: address, AB_UPGRADE_TASK_QUEUE: taskQueue },
    });
    closeSync(fd);
    const w = new WorkerProcess(child, logFile);
    const started = Date.now();
    const from = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
    for (let i = 0; i < readyTimeoutMs / 250 && Date.now() - started < readyTimeoutMs; i++) {
      if (/ab-upgrade worker: .*task queue/.test(readFileSync(logFile, 'utf8').slice(from))) return w;
      if (!w.alive) throw new Error(`worker exited during start-up (${w.exit}); log ${logFile}`);
      await sleep(250);
    }
    await w.kill();
    throw new Error(`worker not ready within ${readyTimeoutMs / 1000} s; log ${logFile}`);
  }

  /** SIGKILL, as a crash would; waits (bounded) until it is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await Promise.race([this.exited, sleep(15_000)]);
  }

  /** SIGTERM (graceful: running activities get the worker's grace time), SIGKILL after 45 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    await Promise.race([this.exited, sleep(45_000)]);
    await this.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// Cases

type Fault = 'worker-kill' | 'server-restart' | 'ssh-cut' | 'host-key' | 'none';
type Scenario = 'good' | 'health-fail' | 'never-back' | 'reject';
type EndState = 'new-slot' | 'old-slot' | 'third';

class PointMissed extends Error {
  override name = 'PointMissed';
}

interface CaseDef {
  name: string;
  fault: Fault;
  /** Where the fault goes, in words (recorded as `point`). */
  point: string;
  workflow: 'upgradeHost' | 'rollbackHost';
  /**
   * good: the lab release, healthy; health-fail: a health command that fails on the new slot
   * (rollback over SSH); never-back: the lab's broken release, whose initramfs hangs (comeback
   * deadline, power reset); reject: the approval is rejected (GRUB compensation).
   */
  scenario: Scenario;
  /** 'manual': the workflow waits for approval; the case's `at` or, after the fault, the driver decides. */
  approval: 'auto' | 'manual';
  /** Waits until the point is reached; throws PointMissed when the workflow got past it. */
  at: (r: CaseRun) => Promise<unknown>;
  /** A further requirement on the final status; returns what is wrong, or null. */
  require?: (s: WorkflowStatus) => string | null;
}

/** Waits for one of `phases` (or the status predicate). */
const atPhase =
  (...phases: PhaseName[]) =>
  (r: CaseRun) =>
    r.waitPhase(phases);

const atState = (state: WorkflowState) => (r: CaseRun) => r.waitStatus(`state ${state}`, (s) => s.state === state, () => false);

/** Once the workflow is in one of `after`, waits for a shell condition on the host during `phases`. */
const atHost =
  (what: string, cond: string, phases: PhaseName[], o: { after?: PhaseName[]; checkPhase?: boolean; intervalS?: number } = {}) =>
  async (r: CaseRun) => {
    if (o.after) await r.waitPhase([...o.after, ...phases], phases);
    await r.waitOnHost(what, cond, phases, o.checkPhase ?? true, o.intervalS ?? 0.2);
  };

const INSTALL_MID = `mountpoint -q ${SPARE} && [ ! -e ${SPARE}/.ab-upgrade-release ] && [ "$(df -BM --output=used ${SPARE} | tail -n 1 | tr -dc 0-9)" -ge ${INSTALL_MARK_MB} ]`;
// The carry regenerates fstab after copying the carried files, before the accounts, GRUB
// defaults and services: the release's own fstab is older than the install's marker.
const CARRY_MID = `[ -e ${SPARE}/.ab-upgrade-release ] && [ ${SPARE}/etc/fstab -nt ${SPARE}/.ab-upgrade-release ]`;
const GRUB_REBOOT = `grep -q '^next_entry=ab-upgrade' /boot/grub/grubenv`;
// Bracketed first letters: the pattern does not match the command line of the shell running it.
const UPDATE_GRUB = `pgrep -f '[g]rub-mkconfig'`;
const GRUB_INSTALL = 'pgrep -x grub-install';

/** Mid-stream install; the host is watched from prepareSpare on, twice a second (it is busy unpacking). */
const atInstallMid = atHost('install mid-stream', INSTALL_MID, ['installRelease'], { after: ['prepareSpare'], intervalS: 0.5 });

/** Waits in awaitComeback until the host went down and its sshd greets again (the new boot). */
async function atComebackGreeting(r: CaseRun): Promise<void> {
  await r.waitPhase(['awaitComeback']);
  const port = r.vm.sshPort;
  const greets = async () => {
    try {
      (await awaitSshGreeting('127.0.0.1', port, 3_000)).destroy();
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 15 * 60_000;
  let wentDown = false;
  for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
    const up = await greets();
    if (!up) wentDown = true;
    else if (wentDown) break;
    await sleep(500);
  }
  const s = await r.status();
  if (!wentDown || s?.phase !== 'awaitComeback') throw new PointMissed(`the new boot's sshd greeted only after awaitComeback (phase ${s?.phase ?? '?'})`);
}

/** Rejects the approval, then waits for the GRUB compensation. */
async function atRejectCompensation(r: CaseRun): Promise<void> {
  await r.waitStatus('awaiting approval', (s) => s.state === 'awaiting-approval', () => false);
  await r.decide(false);
  await r.waitPhase(['compensate.removeBootEntry']);
}

const hostKeyNamed = (s: WorkflowStatus) =>
  /host key/i.test([s.reason ?? '', s.waitingFor ?? '', ...s.notices].join('\n')) ? null : 'neither the reason nor a notice names the host key';

const CASES: CaseDef[] = [
  { name: 'baseline-upgrade', fault: 'none', point: 'no fault (the reference run)', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: async () => undefined },
  // Worker SIGKILL, upgradeHost with a healthy release: every phase boundary and mid-activity.
  { name: 'kill-inspect', fault: 'worker-kill', point: 'start → inspect', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('inspect') },
  { name: 'kill-prepare', fault: 'worker-kill', point: 'inspect → prepareSpare (mkfs)', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('prepareSpare') },
  { name: 'kill-install-start', fault: 'worker-kill', point: 'prepareSpare → installRelease', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('installRelease') },
  { name: 'kill-install-mid', fault: 'worker-kill', point: `mid-stream install (≥ ${INSTALL_MARK_MB} MB unpacked on the spare)`, workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atInstallMid },
  { name: 'kill-carry-start', fault: 'worker-kill', point: 'installRelease → carryConfig', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('carryConfig') },
  { name: 'kill-carry-mid', fault: 'worker-kill', point: 'mid-carry (files copied, fstab regenerated; accounts, GRUB defaults, services to go)', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atHost('carry mid-way', CARRY_MID, ['carryConfig'], { after: ['installRelease'] }) },
  { name: 'kill-boot-entry', fault: 'worker-kill', point: 'carryConfig → addBootEntry', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('addBootEntry') },
  { name: 'kill-approval', fault: 'worker-kill', point: 'awaiting approval (approved after the new worker is up)', workflow: 'upgradeHost', scenario: 'good', approval: 'manual', at: atState('awaiting-approval') },
  { name: 'kill-final-sync', fault: 'worker-kill', point: 'approval → finalSync', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('finalSync') },
  { name: 'kill-trial-boot', fault: 'worker-kill', point: 'finalSync → trialBoot', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('trialBoot') },
  { name: 'kill-grub-reboot', fault: 'worker-kill', point: 'between grub-reboot (next_entry set on the host) and the reboot', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atHost('grub-reboot done', GRUB_REBOOT, ['trialBoot'], { after: ['finalSync', 'trialBoot'], checkPhase: false, intervalS: 0.1 }) },
  { name: 'kill-comeback-down', fault: 'worker-kill', point: 'awaitComeback, host rebooting', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('awaitComeback') },
  { name: 'kill-comeback-greeting', fault: 'worker-kill', point: "awaitComeback, the new boot's sshd greets", workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atComebackGreeting },
  { name: 'kill-health', fault: 'worker-kill', point: 'awaitComeback → checkHealth', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('checkHealth') },
  { name: 'kill-commit', fault: 'worker-kill', point: 'checkHealth → commitSlot', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('commitSlot') },
  { name: 'kill-commit-update-grub', fault: 'worker-kill', point: 'mid-commit: update-grub running on the new slot', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atHost('update-grub running', UPDATE_GRUB, ['commitSlot'], { after: ['checkHealth', 'commitSlot'] }) },
  { name: 'kill-commit-grub-install', fault: 'worker-kill', point: 'mid-commit: grub-install running (the last step)', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atHost('grub-install running', GRUB_INSTALL, ['commitSlot'], { after: ['checkHealth', 'commitSlot'], intervalS: 0.1 }) },
  { name: 'kill-measure', fault: 'worker-kill', point: 'commitSlot → measureHostDowntime', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('measureHostDowntime') },
  // Worker SIGKILL on the rollback paths.
  { name: 'kill-hf-health', fault: 'worker-kill', point: 'checkHealth failing on the new slot', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('checkHealth') },
  { name: 'kill-hf-reboot', fault: 'worker-kill', point: 'SSH rollback after failed health: rollback.rebootToSlot', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('rollback.rebootToSlot') },
  { name: 'kill-hf-comeback', fault: 'worker-kill', point: 'SSH rollback after failed health: rollback.awaitComeback', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('rollback.awaitComeback') },
  { name: 'kill-hf-rollback-health', fault: 'worker-kill', point: 'SSH rollback after failed health: rollback.checkHealth', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('rollback.checkHealth') },
  { name: 'kill-hf-compensate', fault: 'worker-kill', point: 'SSH rollback after failed health: compensate.removeBootEntry', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('compensate.removeBootEntry') },
  { name: 'kill-nb-comeback', fault: 'worker-kill', point: 'never comes back (broken release): awaitComeback, host hung', workflow: 'upgradeHost', scenario: 'never-back', approval: 'auto', at: atPhase('awaitComeback') },
  { name: 'kill-nb-reset', fault: 'worker-kill', point: 'never comes back: rollback.probe / rollback.powerReset', workflow: 'upgradeHost', scenario: 'never-back', approval: 'auto', at: atPhase('rollback.probe', 'rollback.powerReset') },
  { name: 'kill-nb-rollback-comeback', fault: 'worker-kill', point: 'never comes back: rollback.awaitComeback after the power reset', workflow: 'upgradeHost', scenario: 'never-back', approval: 'auto', at: atPhase('rollback.awaitComeback') },
  { name: 'kill-nb-compensate', fault: 'worker-kill', point: 'never comes back: compensate.removeBootEntry', workflow: 'upgradeHost', scenario: 'never-back', approval: 'auto', at: atPhase('compensate.removeBootEntry') },
  { name: 'kill-reject-compensate', fault: 'worker-kill', point: 'rejected: compensate.removeBootEntry', workflow: 'upgradeHost', scenario: 'reject', approval: 'manual', at: atRejectCompensation },
  // Worker SIGKILL during rollbackHost (a host committed on slot B back to slot A).
  { name: 'kill-rh-reboot', fault: 'worker-kill', point: 'rollbackHost: rebootToSlot', workflow: 'rollbackHost', scenario: 'good', approval: 'auto', at: atPhase('rebootToSlot') },
  { name: 'kill-rh-comeback', fault: 'worker-kill', point: 'rollbackHost: awaitComeback', workflow: 'rollbackHost', scenario: 'good', approval: 'auto', at: atPhase('awaitComeback') },
  { name: 'kill-rh-commit', fault: 'worker-kill', point: 'rollbackHost: commitSlot', workflow: 'rollbackHost', scenario: 'good', approval: 'auto', at: atPhase('commitSlot') },
  // The Temporal dev server SIGKILLed and started again on the same SQLite database.
  { name: 'server-install-mid', fault: 'server-restart', point: `mid-stream install (≥ ${INSTALL_MARK_MB} MB unpacked)`, workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atInstallMid },
  { name: 'server-approval', fault: 'server-restart', point: 'awaiting approval (approved after the restart)', workflow: 'upgradeHost', scenario: 'good', approval: 'manual', at: atState('awaiting-approval') },
  { name: 'server-comeback', fault: 'server-restart', point: 'awaitComeback, host rebooting', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('awaitComeback') },
  { name: 'server-commit', fault: 'server-restart', point: 'commitSlot', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atPhase('commitSlot') },
  { name: 'server-hf-rollback', fault: 'server-restart', point: 'SSH rollback after failed health: rollback.awaitComeback', workflow: 'upgradeHost', scenario: 'health-fail', approval: 'auto', at: atPhase('rollback.awaitComeback') },
  // The worker's SSH connections cut on the host.
  { name: 'ssh-cut-install', fault: 'ssh-cut', point: `mid-stream install (≥ ${INSTALL_MARK_MB} MB unpacked)`, workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atInstallMid },
  { name: 'ssh-cut-carry', fault: 'ssh-cut', point: 'mid-carry (fstab regenerated)', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: atHost('carry mid-way', CARRY_MID, ['carryConfig'], { after: ['installRelease'] }) },
  // The new slot presents another SSH host key than the one inspect saw (and the profile pins).
  { name: 'hostkey-comeback', fault: 'host-key', point: 'between inspect and comeback: the new slot boots with new SSH host keys', workflow: 'upgradeHost', scenario: 'good', approval: 'manual', at: atState('awaiting-approval'), require: hostKeyNamed },
];

// ---------------------------------------------------------------------------------------------
// One run: Temporal server, images, client

interface Session {
  address: string;
  port: number;
  dbFile: string;
  client: Client;
  taskQueue: string;
  workDir: string;
  image: LabImage;
  release: LabRelease;
  /** VERSION_ID of the lab release (os-release of the new slot after an upgrade). */
  releaseVersion: string;
  caseTimeoutMs: number;
  manifest: boolean;
}

async function restartServer(sess: Session): Promise<number> {
  const t = Date.now();
  await server!.kill();
  server = await startDevServer({ port: sess.port, dbFile: sess.dbFile });
  return (Date.now() - t) / 1000;
}

/** Bounded, for calls that may hang while the server or the worker is away. */
function within<T>(client: Client, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.withDeadline(Date.now() + ms, fn);
}

// ---------------------------------------------------------------------------------------------
// The host's state: what is compared before and after

interface HostState {
  slot: string;
  version: string;
  grub: Record<string, string>;
  grubenv: string;
}

async function hostState(vm: VmHandle): Promise<HostState> {
  return {
    slot: await hostSlot(vm),
    version: (await onVm(vm, '. /etc/os-release; echo "$VERSION_ID"')).trim(),
    grub: await grubFiles(vm),
    grubenv: await onVm(vm, 'cat /boot/grub/grubenv'),
  };
}

/** 'identical', 'empty next_entry' (the one tolerated difference, see the header), or null. */
export function grubenvMatch(before: string, after: string): 'identical' | 'empty next_entry' | null {
  if (before === after) return 'identical';
  if (before.length !== after.length) return null;
  const vars = (t: string) => t.split('\n').filter((l) => l !== '' && !l.startsWith('#') && l !== 'next_entry=');
  return JSON.stringify(vars(before)) === JSON.stringify(vars(after)) ? 'empty next_entry' : null;
}

const otherSlot = (s: string) => (s === 'a' ? 'b' : 'a');

// ---------------------------------------------------------------------------------------------
// A case in progress

interface CaseResult {
  name: string;
  point: string;
  fault: Fault;
  workflow: CaseDef['workflow'];
  scenario: Scenario;
  /** Whether the fault went in at its point (false: the workflow got past the point first). */
  injected: boolean;
  /** The phase the status query showed when the fault went in. */
  faultPhase: string | null;
  workflowState: WorkflowState | 'unknown';
  reason: string | null;
  endState: EndState;
  verified: boolean;
  problems: string[];
  notes: string[];
  /** The workflow's phases: phase:outcome:seconds. */
  path: string[];
  /** The profile's timings, ms. */
  timings: Profile['timings'] | null;
  /** Activities that needed more than one attempt, as name#attempt (from the history; absent in
   *  the first cases recorded, from before it was collected). */
  retried?: string[];
  /** Whole case: VM boot to the end of the host checks. */
  seconds: number;
  bootSeconds: number;
  /** Workflow start to its end. */
  workflowSeconds: number;
  /** Fault injected to the workflow's end. */
  afterFaultSeconds: number | null;
  verifySeconds: number;
  date: string;
}

class CaseRun {
  worker!: WorkerProcess;
  handle!: WorkflowHandle;
  decided = false;
  /** The last status the query answered (the fault goes in without asking again). */
  lastStatus: WorkflowStatus | null = null;
  readonly notes: string[] = [];
  private workers = 0;

  constructor(
    readonly def: CaseDef,
    readonly sess: Session,
    readonly vm: VmHandle,
    readonly logDir: string,
    readonly deadline: number,
  ) {}

  note(text: string): void {
    this.notes.push(text);
    log(`${this.def.name}: ${text}`);
  }

  async startWorker(): Promise<number> {
    const t = Date.now();
    this.workers++;
    this.worker = await WorkerProcess.start(this.sess.address, this.sess.taskQueue, join(this.logDir, `worker-${this.workers}.log`));
    return (Date.now() - t) / 1000;
  }

  /** The status query, bounded; null when it does not answer (worker or server away). */
  async status(): Promise<WorkflowStatus | null> {
    try {
      const s = await within(this.sess.client, 15_000, () => this.handle.query(statusQuery));
      this.lastStatus = s;
      return s;
    } catch {
      return null;
    }
  }

  /** Polls the status until `pred`; PointMissed when `missed` says it got past, or at the deadline. */
  async waitStatus(what: string, pred: (s: WorkflowStatus) => boolean, missed: (s: WorkflowStatus) => boolean): Promise<WorkflowStatus> {
    const end = this.deadline;
    for (let i = 0; i < 100_000 && Date.now() < end && !aborting; i++) {
      const s = await this.status();
      if (s && pred(s)) return s;
      if (s && (isFinalState(s.state) || missed(s))) throw new PointMissed(`${what}: not reached (phase ${s.phase}, state ${s.state})`);
      await sleep(POLL_MS);
    }
    throw new PointMissed(`${what}: not reached within the case's time`);
  }

  /** Waits until the phase is one of `phases`; missed once one of `passed` has ended and the phase moved on. */
  waitPhase(phases: PhaseName[], passed: PhaseName[] = phases): Promise<WorkflowStatus> {
    return this.waitStatus(
      `phase ${phases.join('|')}`,
      (s) => (phases as string[]).includes(s.phase),
      (s) => s.timeline.some((p) => passed.includes(p.phase) && p.endedAt) && !(phases as string[]).includes(s.phase),
    );
  }

  /**
   * Runs a wait loop on the host (45 s per SSH session) until `cond` holds; then, with
   * checkPhase, the workflow must still be in one of `phases`.
   */
  async waitOnHost(what: string, cond: string, phases: PhaseName[], checkPhase: boolean, intervalS: number): Promise<void> {
    const rounds = Math.round(45 / intervalS);
    const loop = `i=0; while [ $i -lt ${rounds} ]; do if { ${cond}; } >/dev/null 2>&1; then echo HIT; exit 0; fi; sleep ${intervalS}; i=$((i+1)); done; echo WAIT`;
    const movedOn = (s: WorkflowStatus) =>
      isFinalState(s.state) || (s.timeline.some((p) => phases.includes(p.phase) && p.endedAt) && !(phases as string[]).includes(s.phase));
    for (let i = 0; i < 2000 && Date.now() < this.deadline && !aborting; i++) {
      const r = await this.vm.ssh(loop, { timeoutMs: 90_000 });
      if (r.stdout.includes('HIT')) {
        if (!checkPhase) return;
        const s = await this.status();
        if (s && (phases as string[]).includes(s.phase)) return;
        throw new PointMissed(`${what}: seen on the host in phase ${s?.phase ?? '?'}, not ${phases.join('|')}`);
      }
      const s = await this.status();
      if (s && movedOn(s)) throw new PointMissed(`${what}: not seen on the host before phase ${s.phase} (state ${s.state})`);
      if (!r.stdout.includes('WAIT')) await sleep(2_000); // the host did not answer (rebooting)
    }
    throw new PointMissed(`${what}: not seen on the host within the case's time`);
  }

  /** Approves or rejects through the update (bounded, a few tries). */
  async decide(approve: boolean): Promise<void> {
    for (let i = 1; i <= 5; i++) {
      try {
        await within(this.sess.client, 60_000, () =>
          this.handle.executeUpdate(approve ? approveUpdate : rejectUpdate, { args: [{ by: 'chaos', reason: `chaos case ${this.def.name}` }] }),
        );
        this.decided = true;
        this.note(`${approve ? 'approved' : 'rejected'}`);
        return;
      } catch (e) {
        this.note(`${approve ? 'approve' : 'reject'} attempt ${i} failed: ${(e as Error).message}`);
        await sleep(5_000);
      }
    }
    throw new Error(`could not ${approve ? 'approve' : 'reject'} within 5 tries`);
  }

  /** What an operator does for awaiting-operator: a hand reset (QMP), then hostRecovered. */
  async actAsOperator(s: WorkflowStatus): Promise<void> {
    this.note(`awaiting-operator: ${s.waitingFor ?? '?'}`);
    const before = await this.vm.bootId(10_000);
    await new QmpPowerDriver(this.vm.qmpSocket).reset();
    await this.vm.waitForSsh(300_000, before ? { notBootId: before } : {}).catch((e: Error) => this.note(`after the operator's reset: ${e.message}`));
    await within(this.sess.client, 30_000, () => this.handle.signal(hostRecoveredSignal, { by: 'chaos', note: 'QMP reset by the chaos harness' }));
    this.note('operator: QMP reset, hostRecovered signalled');
  }

  /** The fault itself. Returns false when it could not go in (no SSH session to cut). */
  async inject(s: WorkflowStatus | null): Promise<boolean> {
    switch (this.def.fault) {
      case 'none':
        return false;
      case 'worker-kill': {
        await this.worker.kill();
        const ready = await this.startWorker();
        this.note(`worker SIGKILLed (last phase seen: ${s?.phase ?? '?'}); a new worker process was ready ${round(ready)} s later`);
        return true;
      }
      case 'server-restart': {
        const took = await restartServer(this.sess);
        this.note(`Temporal server SIGKILLed in phase ${s?.phase ?? '?'} and answering again on the same database ${round(took)} s later`);
        if (!this.worker.alive) {
          this.note(`the worker exited while the server was away (${this.worker.exit}); starting a new one`);
          await this.startWorker();
        }
        return true;
      }
      case 'ssh-cut': {
        // Every root session's sshd process except the one running this command ($PPID); the
        // listener's command line is different ("sshd: /usr/sbin/sshd -D [listener] ...").
        const out = await onVm(
          this.vm,
          `n=0; for p in $(pgrep -f '^sshd(-session)?: root@notty'); do [ "$p" = "$PPID" ] && continue; kill -9 "$p" && n=$((n+1)); done; echo $n`,
        );
        const n = Number(out.trim());
        this.note(`cut ${n} SSH session(s) on the host in phase ${s?.phase ?? '?'}`);
        return n > 0;
      }
      case 'host-key': {
        // On the spare (the new slot): ssh.service makes new host keys before sshd starts. The
        // final sync copies carried files onto the new slot but leaves this drop-in alone.
        const spare = s?.facts?.spare.device;
        if (!spare) throw new Error('no spare device in the status');
        // Written through the runbook's own mount when it is read-write (a second mount of the
        // same filesystem could not be read-write while that one is read-only), else our own.
        await onVm(
          this.vm,
          `set -e
if findmnt -n -o OPTIONS --mountpoint ${SPARE} | grep -q '^rw'; then m=${SPARE}; own=; else m=/run/chaos-rekey; own=1; mkdir -p $m; mount ${spare} $m; fi
d=$m/etc/systemd/system/ssh.service.d; mkdir -p $d
printf '%s\\n' '[Service]' "ExecStartPre=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; ssh-keygen -A'" > $d/zz-chaos-new-host-keys.conf
sync -f $d
[ -z "$own" ] || umount $m`,
        );
        this.note(`new slot (${spare}) set to boot with new SSH host keys`);
        return true;
      }
    }
  }

  /** Activities whose completing attempt was not the first, from the history (bounded). */
  async retriedActivities(): Promise<string[]> {
    try {
      const events = (await within(this.sess.client, 60_000, () => this.handle.fetchHistory())).events ?? [];
      const names = new Map<string, string>();
      const out: string[] = [];
      for (const e of events) {
        const scheduled = e.activityTaskScheduledEventAttributes;
        if (scheduled) names.set(String(e.eventId), scheduled.activityType?.name ?? '?');
        const started = e.activityTaskStartedEventAttributes;
        if (started && (started.attempt ?? 1) > 1) out.push(`${names.get(String(started.scheduledEventId)) ?? '?'}#${started.attempt}`);
      }
      return out;
    } catch (e) {
      this.note(`could not read the history: ${(e as Error).message.split('\n')[0]}`);
      return [];
    }
  }

  /** Drives the workflow to its end (approval, operator), bounded; returns the final status. */
  async drive(): Promise<WorkflowStatus | null> {
    let operatorActs = 0;
    for (let i = 0; i < 10_000 && Date.now() < this.deadline && !aborting; i++) {
      if (!this.worker.alive) {
        this.note(`the worker exited by itself (${this.worker.exit}); starting a new one`);
        await this.startWorker();
      }
      let running = true;
      try {
        running = (await within(this.sess.client, 15_000, () => this.handle.describe())).status.name === 'RUNNING';
      } catch {
        /* server away: ask again */
      }
      if (!running) break;
      const s = await this.status();
      if (s?.state === 'awaiting-approval' && !this.decided) await this.decide(this.def.scenario !== 'reject');
      if (s?.state === 'awaiting-operator') {
        if (operatorActs >= 2) {
          this.note('still awaiting the operator after two hand resets; giving up on this case');
          return s;
        }
        operatorActs++;
        await this.actAsOperator(s);
      }
      await sleep(2_000);
    }
    for (let i = 1; i <= 5 && !aborting; i++) {
      try {
        return await within(this.sess.client, 60_000, () => finalStatus(this.handle));
      } catch (e) {
        if (Date.now() >= this.deadline) break;
        this.note(`reading the result, attempt ${i}: ${(e as Error).message.split('\n')[0]}`);
        await sleep(3_000);
      }
    }
    return this.status();
  }
}

/**
 * The profile for a case's scenario: the lab's timings (comeback deadline 10 min, for slow
 * emulated boots), an approval that waits long enough for any fault, and the failures e2e's
 * settings for the health-fail and never-back scenarios. With new host keys the comeback fails
 * as soon as the new slot's sshd answers, and the rollback waits out the rest of the deadline: 5 min.
 */
function caseProfile(sess: Session, vm: VmHandle, c: CaseDef): Profile {
  const timings = { approvalTimeout: '2h', comebackDeadline: '10m', pollInterval: '2s', healthTimeout: '2m' };
  let release = sess.release.good;
  const o: Partial<ProfileInput> = { timings };
  if (c.scenario === 'health-fail') {
    o.health = { commands: [{ name: 'still bookworm', run: 'grep -q bookworm /etc/os-release', timeout: '10s' }], units: [], tcpPorts: [] };
    o.timings = { ...timings, healthTimeout: '20s' };
  } else if (c.scenario === 'never-back') {
    release = sess.release.broken;
    o.timings = { ...timings, comebackDeadline: '150s' };
  }
  if (c.fault === 'host-key') o.timings = { ...timings, comebackDeadline: '5m' };
  return labProfile(sess.image, vm, release, o);
}

/** Checks the host's end state against the state before the workflow started. */
async function verify(r: CaseRun, before: HostState, expectedNewVersion: string, s: WorkflowStatus | null, manifestBefore: string | null) {
  const vm = r.vm;
  const problems: string[] = [];
  const from = before.slot;
  const to = otherSlot(from);
  let endState: EndState = 'third';
  try {
    await vm.waitForSsh(300_000);
    const now = await hostState(vm);
    if (now.slot === to) {
      if (!now.version.startsWith(expectedNewVersion)) problems.push(`slot ${to} runs VERSION_ID ${now.version}, expected ${expectedNewVersion}`);
      if (!now.grubenv.split('\n').includes(`saved_entry=ab-upgrade-slot-${to}`)) problems.push(`grubenv has no saved_entry=ab-upgrade-slot-${to}`);
      if (/^next_entry=\S/m.test(now.grubenv)) problems.push('grubenv has a pending one-time entry');
      if (!problems.length) {
        const after = await plainReboot(vm);
        if (after !== to) problems.push(`a plain reboot came back on slot ${after}, not ${to}`);
        else endState = 'new-slot';
      }
    } else if (now.slot === from) {
      if (now.version !== before.version) problems.push(`slot ${from} runs VERSION_ID ${now.version}, was ${before.version}`);
      for (const f of ['/boot/grub/grub.cfg', '/boot/grub/custom.cfg', '/etc/default/grub']) {
        if (now.grub[f] !== before.grub[f]) problems.push(`${f}: sha256 ${now.grub[f]}, was ${before.grub[f]}`);
      }
      const env = grubenvMatch(before.grubenv, now.grubenv);
      if (!env) problems.push(`/boot/grub/grubenv differs beyond an empty next_entry: ${JSON.stringify(now.grubenv.replace(/#+$/, ''))}, was ${JSON.stringify(before.grubenv.replace(/#+$/, ''))}`);
      else if (env !== 'identical') r.note(`grubenv equal but for an empty next_entry= line`);
      const leftovers = (await onVm(vm, 'ls -d /boot/grub/ab-upgrade-backup-* 2>/dev/null || true')).trim();
      if (leftovers) r.note(`GRUB backup left behind: ${leftovers}`);
      if (manifestBefore !== null) {
        const m = await slotManifest(vm, '/', /^(boot\/grub\/ab-upgrade-backup-)/);
        if (m !== manifestBefore) problems.push(`slot ${from}'s system files changed (manifest differs)`);
      }
      if (!problems.length) {
        const after = await plainReboot(vm);
        if (after !== from) problems.push(`a plain reboot came back on slot ${after}, not ${from}`);
        else endState = 'old-slot';
      }
    } else {
      problems.push(`the host runs neither slot`);
    }
  } catch (e) {
    problems.push(`host check failed: ${(e as Error).message.split('\n')[0]}`);
  }
  // The workflow must say what the host shows.
  const state = s?.state;
  if (!state) problems.push('the workflow reported no final status');
  else if (!isFinalState(state)) problems.push(`the workflow did not end (state ${state})`);
  else if (endState === 'new-slot' && state !== 'committed') problems.push(`host committed on the new slot, workflow says ${state}`);
  else if (endState === 'old-slot' && state === 'committed') problems.push('host back on the old slot, workflow says committed');
  if (s && r.def.require) {
    const why = r.def.require(s);
    if (why) problems.push(why);
  }
  return { endState, problems };
}

const expectedState: Record<Scenario, WorkflowState> = { good: 'committed', 'health-fail': 'rolled-back', 'never-back': 'rolled-back', reject: 'rejected' };

async function runCase(sess: Session, c: CaseDef, base: string | null): Promise<CaseResult> {
  const started = Date.now();
  const stamp = new Date().toISOString().replace(/\D/g, '').slice(4, 14);
  const name = `chaos-${c.name}-${stamp}`.slice(0, 60);
  const logDir = join(sess.workDir, 'logs', c.name);
  mkdirSync(logDir, { recursive: true });
  log(`${c.name}: ${c.fault} at ${c.point}; booting a fresh VM${base ? ' (committed on slot B)' : ''}`);
  const image = base ? { ...sess.image, disk: base } : sess.image;
  const vm = await bootLab(image, name, join(sess.workDir, 'vms'));
  liveVms.add(vm);
  const bootSeconds = (Date.now() - started) / 1000;
  const r = new CaseRun(c, sess, vm, logDir, started + sess.caseTimeoutMs);
  let injected = false;
  let faultPhase: string | null = null;
  let injectedAt: number | null = null;
  let wfStart = Date.now();
  let wfEnd = Date.now();
  let final: WorkflowStatus | null = null;
  let endState: EndState = 'third';
  let problems: string[] = [];
  let verifySeconds = 0;
  let timings: Profile['timings'] | null = null;
  let retried: string[] = [];
  try {
    await r.startWorker();
    const before = await hostState(vm);
    let expectedNew = sess.releaseVersion;
    if (c.workflow === 'rollbackHost') {
      const other = otherSlot(before.slot);
      expectedNew = (
        await onVm(vm, `m=/run/chaos-other; mkdir -p $m; mount -o ro LABEL=ab-slot-${other} $m; . $m/etc/os-release; echo "$VERSION_ID"; umount $m`)
      ).trim();
    }
    const manifestBefore = sess.manifest ? await slotManifest(vm, '/', /^(boot\/grub\/ab-upgrade-backup-)/) : null;
    const profile = caseProfile(sess, vm, c);
    timings = profile.timings;
    wfStart = Date.now();
    r.handle = await startHostWorkflow(sess.client, c.workflow, profile, c.approval === 'auto');
    log(`${c.name}: ${c.workflow} started (${r.handle.workflowId}); waiting for the point`);
    if (c.fault !== 'none') {
      try {
        await c.at(r);
        faultPhase = r.lastStatus?.phase ?? null;
        injected = await r.inject(r.lastStatus);
        injectedAt = Date.now();
      } catch (e) {
        if (!(e instanceof PointMissed)) throw e;
        r.note(`point missed, no fault injected: ${e.message}`);
      }
    }
    final = await r.drive();
    wfEnd = Date.now();
    log(`${c.name}: workflow ended ${final?.state ?? 'unknown'}${final?.reason ? ` (${final.reason})` : ''}; checking the host`);
    const expected = c.fault === 'host-key' ? 'rolled-back' : expectedState[c.scenario];
    if (final && final.state !== expected) r.note(`ended ${final.state}; without the fault this scenario ends ${expected}`);
    retried = await r.retriedActivities();
    await r.worker.stop();
    const v0 = Date.now();
    ({ endState, problems } = await verify(r, before, expectedNew, final, manifestBefore));
    verifySeconds = (Date.now() - v0) / 1000;
  } catch (e) {
    problems.push(`case error: ${(e as Error).stack ?? e}`);
    wfEnd = Date.now();
  } finally {
    await r.worker?.kill();
    try {
      copyFileSync(vm.serialLog, join(logDir, 'serial.log'));
    } catch {
      /* no serial log */
    }
    await vm.stop();
    liveVms.delete(vm);
    rmSync(vm.dir, { recursive: true, force: true });
  }
  const result: CaseResult = {
    name: c.name,
    point: c.point,
    fault: c.fault,
    workflow: c.workflow,
    scenario: c.scenario,
    injected,
    faultPhase,
    workflowState: final?.state ?? 'unknown',
    reason: final?.reason ?? null,
    endState,
    verified: endState !== 'third' && problems.length === 0,
    problems,
    notes: r.notes,
    path:
      final?.timeline.map((p) => `${p.phase}:${p.outcome ?? 'running'}${p.endedAt ? `:${round((Date.parse(p.endedAt) - Date.parse(p.startedAt)) / 1000)}s` : ''}`) ?? [],
    timings,
    retried,
    seconds: round((Date.now() - started) / 1000),
    bootSeconds: round(bootSeconds),
    workflowSeconds: round((wfEnd - wfStart) / 1000),
    afterFaultSeconds: injectedAt ? round((wfEnd - injectedAt) / 1000) : null,
    verifySeconds: round(verifySeconds),
    date: new Date().toISOString(),
  };
  log(`${c.name}: ${result.verified ? 'VERIFIED' : 'NOT VERIFIED'} ${endState} in ${result.seconds} s${problems.length ? `: ${problems.join('; ')}` : ''}`);
  return result;
}

/**
 * A lab disk committed on slot B (for the rollbackHost cases), cached next to the lab image,
 * keyed by the release: one clean upgrade, then the guest powered off and its overlay kept.
 */
async function committedBase(sess: Session): Promise<string> {
  const file = join(sess.image.dir, `chaos-committed-${sess.release.good.sha256.slice(0, 16)}.qcow2`);
  if (existsSync(file)) return file;
  log(`making ${file}: one upgrade committed on slot B`);
  const name = `chaos-base-${Date.now().toString(36)}`;
  const vm = await bootLab(sess.image, name, join(sess.workDir, 'vms'));
  liveVms.add(vm);
  const logDir = join(sess.workDir, 'logs', 'committed-base');
  mkdirSync(logDir, { recursive: true });
  const def: CaseDef = { name: 'committed-base', fault: 'none', point: '', workflow: 'upgradeHost', scenario: 'good', approval: 'auto', at: async () => undefined };
  const r = new CaseRun(def, sess, vm, logDir, Date.now() + sess.caseTimeoutMs);
  try {
    await r.startWorker();
    r.handle = await startHostWorkflow(sess.client, 'upgradeHost', caseProfile(sess, vm, def), true);
    const s = await r.drive();
    await r.worker.stop();
    if (s?.state !== 'committed') throw new Error(`the base upgrade ended ${s?.state ?? 'unknown'}: ${s?.reason ?? ''}`);
    if ((await hostSlot(vm)) !== 'b') throw new Error('the base upgrade committed, but the host is not on slot B');
    await vm.ssh('systemd-run --on-active=1 systemctl poweroff', { timeoutMs: 15_000 });
    const power = new QmpPowerDriver(vm.qmpSocket);
    let off = false;
    for (let i = 0; i < 120 && !off; i++) {
      await sleep(1_000);
      off = (await power.status()) === 'off';
    }
    if (!off) throw new Error('the base VM did not power off within 2 min');
  } finally {
    await r.worker?.kill();
    await vm.stop();
    liveVms.delete(vm);
  }
  renameSync(join(vm.dir, 'overlay.qcow2'), `${file}.part`);
  renameSync(`${file}.part`, file);
  rmSync(vm.dir, { recursive: true, force: true });
  return file;
}

// ---------------------------------------------------------------------------------------------
// Results

interface ResultsFile {
  cases: CaseResult[];
  consistent: boolean;
  total: number;
  verified: number;
  notInjected: number;
  machine: string;
  date: string;
}

function readResults(): ResultsFile | null {
  try {
    return JSON.parse(readFileSync(RESULTS, 'utf8')) as ResultsFile;
  } catch {
    return null;
  }
}

/** Merges one case into chaos.json (replacing an earlier run of the same case), atomically. */
function recordResult(r: CaseResult): ResultsFile {
  const prev = readResults()?.cases ?? [];
  const order = new Map(CASES.map((c, i) => [c.name, i]));
  const cases = [...prev.filter((c) => c.name !== r.name), r].sort((a, b) => (order.get(a.name) ?? 999) - (order.get(b.name) ?? 999));
  const file: ResultsFile = {
    cases,
    consistent: cases.every((c) => c.verified),
    total: cases.length,
    verified: cases.filter((c) => c.verified).length,
    notInjected: cases.filter((c) => !c.injected && c.fault !== 'none').length,
    machine: `${hostname()}: ${cpus().length}x ${cpus()[0]?.model ?? '?'}`,
    date: new Date().toISOString(),
  };
  mkdirSync(dirname(RESULTS), { recursive: true });
  writeFileSync(`${RESULTS}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${RESULTS}.tmp`, RESULTS);
  return file;
}

export function formatTable(cases: CaseResult[]): string {
  const rows = [['case', 'fault', 'injected in', 'workflow', 'host end state', 'verified', 'seconds']];
  for (const c of cases) {
    rows.push([c.name, c.fault, c.injected ? (c.faultPhase ?? '?') : 'not injected', c.workflowState, c.endState, c.verified ? 'yes' : 'NO', String(c.seconds)]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

const FAULT_WORDS: Record<Fault, string> = {
  none: 'none',
  'worker-kill': 'worker SIGKILL',
  'server-restart': 'server SIGKILL + restart',
  'ssh-cut': "the worker's SSH sessions cut",
  'host-key': 'new SSH host keys',
};

/** The README's table (`--table`): one row per recorded case, in the matrix's order. */
export function formatMarkdown(cases: CaseResult[]): string {
  const end = (c: CaseResult) => (c.endState === 'new-slot' || c.endState === 'old-slot' ? c.endState.replace('-', ' ') : c.endState) + (c.verified ? ' ✔' : ' ✘');
  const rows = [
    '| case | fault, where | workflow | host end state | retried | case s | workflow s | after the fault s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...cases.map((c) =>
      `| ${c.name} | ${FAULT_WORDS[c.fault]}${c.fault === 'none' ? '' : `, ${c.injected ? c.point : `${c.point} (not injected)`}`} | ${c.workflowState} | ${end(c)} | ${c.retried === undefined ? 'not recorded' : c.retried.join(', ') || '–'} | ${c.seconds} | ${c.workflowSeconds} | ${c.afterFaultSeconds ?? '–'} |`,
    ),
  ];
  return rows.join('\n');
}

// ---------------------------------------------------------------------------------------------

/**
 * The harness's machinery without a VM, against a "host" that accepts TCP connections and never
 * speaks SSH: a real worker process is started, SIGKILLed in inspect and replaced, the Temporal
 * server is SIGKILLed and started again on the same database, and the workflow is still driven
 * to its end (failed in inspect once its attempts are used up, about 3 minutes).
 */
async function selfTest(): Promise<void> {
  const { createServer } = await import('node:net');
  const { parseProfile } = await import('../lib/profile.js');
  const held: import('node:net').Socket[] = [];
  const mute = createServer((sock) => held.push(sock));
  await new Promise<void>((res) => mute.listen(0, '127.0.0.1', res));
  const mutePort = (mute.address() as import('node:net').AddressInfo).port;
  const workDir = join(tmpdir(), `ab-chaos-self-test-${Date.now().toString(36)}`);
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const dbFile = join(workDir, 'temporal.db');
  server = await startDevServer({ dbFile });
  process.env.TEMPORAL_ADDRESS = server.address;
  const taskQueue = `chaos-self-test-${Date.now().toString(36)}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  const client = await connectClient();
  const sess = {
    address: server.address,
    port: Number(server.address.split(':').at(-1)),
    dbFile,
    client,
    taskQueue,
    workDir,
    caseTimeoutMs: 10 * 60_000,
    manifest: false,
  } as Session; // no image or release: nothing here boots a VM
  const def: CaseDef = { name: 'self-test', fault: 'worker-kill', point: 'inspect', workflow: 'upgradeHost', scenario: 'good', approval: 'manual', at: atPhase('inspect') };
  const r = new CaseRun(def, sess, {} as VmHandle, logDir, Date.now() + sess.caseTimeoutMs);
  const checks: string[] = [];
  try {
    const ready = await r.startWorker();
    checks.push(`worker process ready in ${round(ready)} s`);
    const profile = parseProfile({
      name: `chaos-self-test-${Date.now().toString(36)}`,
      host: '127.0.0.1',
      port: mutePort,
      auth: { identityFile: '/nonexistent/id_ed25519' },
      hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      slots: 'auto',
      data: { device: 'LABEL=ab-data', mountPoint: '/srv/data' },
      release: { source: 'debootstrap', suite: 'trixie' },
      power: { driver: 'none' },
    });
    r.handle = await startHostWorkflow(client, 'upgradeHost', profile, false);
    await def.at(r);
    if (!(await r.inject(r.lastStatus))) throw new Error('the worker kill did not go in');
    checks.push('worker SIGKILLed in inspect, a new one started');
    const took = await restartServer(sess);
    checks.push(`server SIGKILLed and answering again on the same database in ${round(took)} s`);
    const again = await r.status();
    if (!again || again.phase !== 'inspect') throw new Error(`after the restarts the status query says ${JSON.stringify(again?.phase)}`);
    checks.push('the status query answers after both restarts, still in inspect');
    const s = await r.drive();
    if (s?.state !== 'failed' || !/^inspect failed/.test(s.reason ?? '')) throw new Error(`expected failed in inspect, got ${s?.state}: ${s?.reason}`);
    checks.push(`driven to its end: ${s.state} (${s.reason})`);
    if (r.notes.some((n) => /exited by itself/.test(n))) throw new Error(`a worker died on its own: ${r.notes.join('; ')}`);
  } finally {
    await r.worker?.stop();
    await client.connection.close().catch(() => undefined);
    await server.stop();
    mute.close();
    for (const sock of held) sock.destroy();
  }
  for (const c of checks) console.log(`ok  ${c}`);
  console.log(`self-test passed; logs in ${logDir}`);
}

async function main(): Promise<void> {
  installStopHandlers();
  if (flag('self-test')) return selfTest();
  if (flag('table')) {
    const recorded = readResults();
    if (!recorded) throw new Error(`no results in ${RESULTS}`);
    console.log(formatMarkdown(recorded.cases));
    return;
  }
  if (flag('list')) {
    const w = Math.max(...CASES.map((c) => c.name.length));
    for (const c of CASES) console.log(`${c.name.padEnd(w)}  ${c.fault.padEnd(14)} ${c.workflow.padEnd(12)} ${c.scenario.padEnd(11)} ${c.point}`);
    console.log(`${CASES.length} cases`);
    return;
  }
  const named = (opt('cases') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = named.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length) throw new Error(`unknown case(s): ${unknown.join(', ')} (see --list)`);
  const done = new Set((readResults()?.cases ?? []).map((c) => c.name));
  const selected = named.length ? CASES.filter((c) => named.includes(c.name)) : CASES.filter((c) => flag('redo') || !done.has(c.name));
  if (!selected.length) {
    console.log(`every case is in ${RESULTS} already (--redo runs them again)`);
    return;
  }
  const caseTimeoutMin = Number(opt('case-timeout-min') ?? '75');
  if (!(caseTimeoutMin > 0)) throw new Error('--case-timeout-min must be a positive number');

  const workDir = join(tmpdir(), `ab-chaos-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}`);
  mkdirSync(workDir, { recursive: true });
  log(`${selected.length} case(s): ${selected.map((c) => c.name).join(', ')}; logs in ${workDir}/logs`);
  const [image, release] = await Promise.all([ensureImage('bios'), ensureRelease()]);
  const releaseVersion = String((JSON.parse(readFileSync(join(release.dir, 'release.json'), 'utf8')) as { os: { versionId: string } }).os.versionId);
  const dbFile = join(workDir, 'temporal.db');
  server = await startDevServer({ dbFile });
  const port = Number(server.address.split(':').at(-1));
  process.env.TEMPORAL_ADDRESS = server.address;
  // startHostWorkflow reads the task queue from the same variable as the worker.
  const taskQueue = `chaos-${Date.now().toString(36)}`;
  process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
  const client = await connectClient();
  const sess: Session = {
    address: server.address,
    port,
    dbFile,
    client,
    taskQueue,
    workDir,
    image,
    release,
    releaseVersion,
    caseTimeoutMs: caseTimeoutMin * 60_000,
    manifest: flag('manifest'),
  };
  const ran: CaseResult[] = [];
  try {
    let base: string | null = null;
    for (const c of selected) {
      if (aborting) break;
      if (c.workflow === 'rollbackHost') base ??= await committedBase(sess);
      const r = await runCase(sess, c, c.workflow === 'rollbackHost' ? base : null);
      if (aborting) break;
      ran.push(r);
      recordResult(r);
    }
  } finally {
    await client.connection.close().catch(() => undefined);
    await server.stop();
  }
  console.log(formatTable(ran));
  const all = readResults();
  if (all) console.log(`chaos.json: ${all.verified} of ${all.total} cases verified, ${all.notInjected} not injected; consistent: ${all.consistent}`);
  console.log(`wrote ${RESULTS}; logs in ${workDir}/logs`);
  if (ran.some((r) => !r.verified)) process.exitCode = 1;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  main().catch(async (e) => {
    console.error(`chaos: ${(e as Error).stack ?? e}`);
    await stopEverything();
    process.exit(1);
  });
}
