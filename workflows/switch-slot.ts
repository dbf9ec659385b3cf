// The tail both host workflows share: reboot into the target slot → watch it come back → check
// it runs the target slot → health → commit. GRUB's default stays on the home slot until the
// commit, so from the reboot on, whatever goes wrong brings the host back home: the run ends
// 'rolled-back' for the reason the workflow words, or 'cancelled' once the host is back.
import { isCancellation, patched } from '@temporalio/workflow';
import type { ComebackResult, HealthReport, HostFacts, SlotName, TrialBootResult } from '../lib/contract.js';
import type { Profile } from '../lib/profile.js';
import type { PhaseName, WorkflowStatus } from '../lib/workflow-api.js';
import type { Activities } from './activity-options.js';
import { comebackMissed, watchComeback } from './comeback.js';
import { describeError, summarizeHealth } from './describe.js';
import { endCancelled } from './endings.js';
import type { Inbox } from './handlers.js';
import type { HostRun } from './host-run.js';
import { recoverTo, rollBack, type LastSeen } from './recovery.js';
import type { Saga } from './saga.js';

export interface SlotSwitch {
  /** The slot the host runs now, where every failure brings it back. */
  home: SlotName;
  /** The slot it reboots into and, once healthy there, commits. */
  target: SlotName;
  /** The reboot into `target`, issued once (never retried), recorded as the phase `phase`. */
  reboot: {
    phase: Extract<PhaseName, 'trialBoot' | 'rebootToSlot'>;
    run: () => Promise<TrialBootResult>;
    describe: (b: TrialBootResult) => string;
  };
  /** Why the run is rolled back, for each way the new boot can fail. */
  rollBackWhen: {
    /** It did not come back in time, or the watch failed: `missed` says which. */
    missed: (missed: string) => string;
    /** It came back on another slot. */
    cameBackOn: (back: ComebackResult) => string;
    /** Its health checks failed (`summary` names them). */
    unhealthy: (summary: string) => string;
  };
}

/** The run, its messages and compensations, and the host as inspected. */
export interface Host {
  run: HostRun;
  inbox: Pick<Inbox, 'awaitRecovered'>;
  saga: Pick<Saga, 'unwind'>;
  a: Pick<Activities, 'reboot' | 'comeback' | 'health' | 'commit' | 'measure' | 'probe' | 'power'>;
  profile: Profile;
  facts: HostFacts;
}

/** Ends the run: 'committed' on `target`, or 'rolled-back' on `home`, or throws the cancellation. */
export async function switchSlot(h: Host, s: SlotSwitch): Promise<WorkflowStatus> {
  const { run, a, profile, facts } = h;
  const deadline = profile.timings.comebackDeadline;
  let last: LastSeen = { bootId: facts.bootId };
  let committed = false;
  try {
    // The reboot, never retried. From here on every failure brings the host back home.
    const boot = await run.phase(s.reboot.phase, s.reboot.run, s.reboot.describe);

    // A new boot must answer on `target` before the deadline.
    const back = await watchComeback(run, a, profile, 'awaitComeback', boot.bootIdBefore, boot.issuedAt, deadline);
    if (back.kind !== 'back') {
      return await rollBack(h, s.home, s.rollBackWhen.missed(comebackMissed(s.target, deadline, back)), { ...last, watch: back });
    }
    last = { bootId: back.bootId };
    if (back.slot !== s.target) return await rollBack(h, s.home, s.rollBackWhen.cameBackOn(back), last);

    // Health of the system on `target`, in the boot that came back (another boot fails the phase).
    const health = await run.phase('checkHealth', () => a.health.checkHealth(profile, back.bootId), summarizeHealth);
    run.status.health = health;
    if (!health.ok) return await rollBack(h, s.home, s.rollBackWhen.unhealthy(summarizeHealth(health)), last);

    // Commit: `target` becomes GRUB's default (and owns the boot).
    await run.phase('commitSlot', () => a.commit.commitSlot(profile, facts, s.target), () => `slot ${s.target} is the default`);
    committed = true;

    await recordDowntime(h, boot, back, health);
    return run.finish('committed');
  } catch (err) {
    // Once committed, a cancel request cannot undo the switch (rollbackHost can): the run ends
    // committed. Histories from before this rule went home instead, hence the patch marker.
    if (committed && isCancellation(err) && patched('committed-survives-cancel')) {
      run.notice(`cancel requested after slot ${s.target} was committed: it stays committed (rollbackHost returns to slot ${s.home})`);
      return run.finish('committed');
    }
    // A failed step (the reboot itself included), or the workflow cancelled: bring the host home.
    if (isCancellation(err)) return await endCancelled(run, h.saga, err, () => recoverTo(h, s.home, last));
    return await rollBack(h, s.home, `${run.status.phase} failed: ${describeError(err)}`, last);
  }
}

/**
 * Downtime as the users saw it (reboot issued → healthy), plus the host's own account from its
 * clock and unit timestamps (best effort: a failure here never fails the workflow).
 */
async function recordDowntime({ run, a, profile }: Host, boot: TrialBootResult, back: ComebackResult, health: HealthReport): Promise<void> {
  const hostSide = await run.bestEffort(
    'measureHostDowntime',
    () => a.measure.measureHostDowntime(profile, boot),
    (d) => `to sshd ${d.toSshdS ?? '?'}s, to services ${d.toServicesS ?? '?'}s`,
  );
  run.status.downtime = {
    issuedAt: boot.issuedAt,
    answeredAt: back.answeredAt,
    healthyAt: health.checkedAt,
    downtimeMs: health.checkedAt - boot.issuedAt,
    ...(hostSide ? { hostSide } : {}),
  };
}
