// Bringing a host back onto the slot GRUB defaults to, once a reboot was issued and the run
// cannot go on (the new boot failed, or the run was cancelled), and the automatic rollback that
// ends a run that way.
//
// The loop: the host answers → reboot it there over SSH; it does not → reset it through the
// power driver (the one-time boot is spent, so a reset lands on GRUB's default); still not back
// → reset once more; then, or with no power driver at all, wait for the operator's
// `hostRecovered` signal and look again. It ends only when the host is seen on the slot.
import { CancellationScope, workflowInfo } from '@temporalio/workflow';
import { FailureTypes, type HostFacts, type ProbeResult, type SlotName } from '../lib/contract.js';
import type { Profile } from '../lib/profile.js';
import type { WorkflowStatus } from '../lib/workflow-api.js';
import type { Activities } from './activity-options.js';
import { waitOutDeadline, watchComeback, type Comeback } from './comeback.js';
import { describeError, failureType, summarizeHealth } from './describe.js';
import type { Inbox } from './handlers.js';
import type { HostRun } from './host-run.js';
import type { Saga } from './saga.js';

/** What bringing a host back needs: the run, the operator's word, the activities that reach the host. */
export interface Recovery {
  run: HostRun;
  inbox: Pick<Inbox, 'awaitRecovered'>;
  a: Pick<Activities, 'probe' | 'power' | 'reboot' | 'comeback'>;
  profile: Profile;
  facts: HostFacts;
}

/** What the workflow last knew of the host when it set out to bring it back. */
export interface LastSeen {
  /** The last boot id seen: a comeback is a boot with another one. */
  bootId: string;
  /** The comeback watch that gave up on the host, if one did (its deadline is waited out first). */
  watch?: Comeback;
}

/** Returns once a probe or a comeback shows the host running `target`. */
export async function recoverTo(r: Recovery, target: SlotName, last: LastSeen): Promise<void> {
  const { run, a, profile, facts } = r;
  let lastBootId = last.bootId;
  let noDriver = profile.power.driver === 'none';
  let resets = 0;
  let sshRebootFailed = false;
  let automatic = 0;
  await waitOutDeadline(last.watch);
  for (;;) {
    const probe = await probeHost(r);
    if (probe.reachable && probe.bootId) lastBootId = probe.bootId;
    if (probe.reachable && probe.slot === target) return;

    let bootIdBefore = probe.bootId ?? lastBootId;
    let issuedAt: number;
    if (automatic < 3 && probe.reachable && !sshRebootFailed) {
      try {
        const boot = await run.phase(
          'rollback.rebootToSlot',
          () => a.reboot.rebootToSlot(profile, facts, target, false),
          (b) => `${b.mode} reboot into slot ${target}`,
        );
        bootIdBefore = boot.bootIdBefore || bootIdBefore;
        issuedAt = boot.issuedAt;
      } catch (err) {
        sshRebootFailed = true;
        run.notice(`rebooting into slot ${target} over SSH failed: ${describeError(err)}`);
        continue;
      }
    } else if (automatic < 3 && !noDriver && resets < 2) {
      issuedAt = Date.now();
      try {
        await run.phase(
          'rollback.powerReset',
          () => a.power.powerReset(profile),
          () => `hard reset through ${profile.power.driver} (reset ${resets + 1} of 2)`,
        );
        resets++;
      } catch (err) {
        resets++;
        if (failureType(err) === FailureTypes.NoPowerDriver) noDriver = true;
        run.notice(`power reset failed: ${describeError(err)}`);
        continue;
      }
    } else {
      await awaitOperator(r, target, probe, noDriver);
      sshRebootFailed = false;
      automatic = 0;
      continue; // probe again: believe the host, not the message
    }
    automatic++;
    const back = await watchComeback(run, a, profile, 'rollback.awaitComeback', bootIdBefore, issuedAt, profile.timings.comebackDeadline);
    if (back.kind === 'back' && back.slot === target) return;
    if (back.kind === 'back') {
      lastBootId = back.bootId;
      run.notice(`host came back on slot ${back.slot}, not ${target}`);
    } else await waitOutDeadline(back);
  }
}

/**
 * The automatic rollback: back onto `target`, its health checked there (recorded, not fatal),
 * then the compensations; the run ends 'rolled-back' for `reason`. Not cancellable: a cancel
 * request must not strand the host.
 */
export async function rollBack(
  r: Recovery & { a: Pick<Activities, 'health'>; saga: Pick<Saga, 'unwind'> },
  target: SlotName,
  reason: string,
  last: LastSeen,
): Promise<WorkflowStatus> {
  const { run, a, profile } = r;
  run.notice(`rolling back to slot ${target}: ${reason}`);
  await CancellationScope.nonCancellable(async () => {
    await recoverTo(r, target, last);
    const health = await run.bestEffort('rollback.checkHealth', () => a.health.checkHealth(profile), summarizeHealth);
    if (health) {
      run.status.health = health;
      if (!health.ok) run.notice(`slot ${target} is back but its health checks fail: ${summarizeHealth(health)}`);
    }
    await r.saga.unwind();
  });
  return run.finish('rolled-back', reason);
}

async function probeHost({ run, a, profile }: Recovery): Promise<ProbeResult> {
  try {
    return await run.phase(
      'rollback.probe',
      () => a.probe.probeHost(profile),
      (p) => (p.reachable ? `answers: slot ${p.slot ?? '?'}, boot ${p.bootId ?? '?'}` : `does not answer: ${p.detail}`),
    );
  } catch (err) {
    return { reachable: false, bootId: null, slot: null, detail: `probe failed: ${describeError(err)}` };
  }
}

/** Durably waits for a human to reset the host by hand, saying exactly what to do. */
async function awaitOperator({ run, inbox, profile: p, facts }: Recovery, target: SlotName, probe: ProbeResult, noDriver: boolean): Promise<void> {
  const slotDev = (facts.active.name === target ? facts.active : facts.spare).device;
  const situation = probe.reachable
    ? `answers on slot ${probe.slot ?? '?'} but could not be rebooted into slot ${target} automatically`
    : `does not answer (${probe.detail}) and ${noDriver ? 'has no usable power driver' : `resets through ${p.power.driver} did not bring it back`}`;
  const rec = run.begin('rollback.awaitOperator');
  run.setState(
    'awaiting-operator',
    `host ${p.name} (${p.host}) ${situation}. Reset or power-cycle it by hand (out-of-band console / KVM) so it boots slot ${target}` +
      `${slotDev ? ` (${slotDev})` : ''}, GRUB's default; when it answers: ab-upgrade recovered ${p.name}, or ` +
      `temporal workflow signal --workflow-id '${workflowInfo().workflowId}' --name hostRecovered --input '{"by":"<you>"}'`,
  );
  const said = await inbox.awaitRecovered();
  run.setState('running');
  run.end(rec, 'ok', `${said.by} says the host was recovered${said.note ? `: ${said.note}` : ''}`);
}
