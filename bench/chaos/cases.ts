// The chaos matrix: the kinds of fault and scenario, how each case finds its point (from the
// workflow's status query or from markers on the host), and CASES in the order --list prints.
import { awaitSshGreeting } from '../../activities/ssh-greeting.js';
import type { PhaseName, WorkflowState, WorkflowStatus } from '../../lib/workflow-api.js';
import type { CaseRun } from './case-run.js';
import { sleep } from './options.js';

/** Where the runbook mounts the spare on the host (activities/host-io.ts SPARE_MNT). */
export const SPARE = '/run/ab-upgrade/spare';
/** Unpacked MB on the spare that count as "mid-install" (the lab release unpacks to about 290 MB). */
const INSTALL_MARK_MB = 120;

export type Fault = 'worker-kill' | 'server-restart' | 'ssh-cut' | 'host-key' | 'none';
export type Scenario = 'good' | 'health-fail' | 'never-back' | 'reject';
export type EndState = 'new-slot' | 'old-slot' | 'third';

export class PointMissed extends Error {
  override name = 'PointMissed';
}

export interface CaseDef {
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
export const atPhase =
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

export const CASES: CaseDef[] = [
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
