// The comeback watch after a reboot: the heartbeating `awaitComeback` poll races a workflow
// timer, and says how it ended: the host came back, the deadline passed (the poll is then
// cancelled), or the poll failed for good before the deadline — at once when the host answers
// with another SSH host key than the pinned one (a HostKeyMismatch failure, never retried).
import { CancellationScope, isCancellation, patched, sleep } from '@temporalio/workflow';
import { FailureTypes, type ComebackResult, type SlotName } from '../lib/contract.js';
import { formatDurationMs } from '../lib/duration.js';
import type { Profile } from '../lib/profile.js';
import type { Activities } from './activity-options.js';
import { describeError, failureType } from './describe.js';
import type { HostRun } from './host-run.js';

export type Comeback =
  | ({ kind: 'back' } & ComebackResult)
  | { kind: 'deadline' }
  | {
      kind: 'failed';
      reason: string;
      /** Epoch ms when the host's time to come back is up (the watch gave up before). */
      deadlineAt: number;
      /**
       * The host answered with another SSH host key than the pinned one: a definite answer (it
       * is up, and not to be trusted), so nothing waits for the rest of the deadline.
       */
      hostKeyChanged: boolean;
    };

/**
 * Watches for a new boot (a boot id other than `bootIdBefore`) until `deadlineMs` after
 * `issuedAt`, recorded as the phase `name`. Cancelling the workflow cancels the watch: that
 * cancellation is thrown, for the caller to clean up.
 */
export async function watchComeback(
  run: HostRun,
  a: Pick<Activities, 'comeback'>,
  profile: Profile,
  name: 'awaitComeback' | 'rollback.awaitComeback',
  bootIdBefore: string,
  issuedAt: number,
  deadlineMs: number,
): Promise<Comeback> {
  const t = profile.timings;
  const rec = run.begin(name);
  // Measured from issuedAt (the activity's clock): time already spent since the reboot counts,
  // but give the host at least a couple of polls even if the worker was away for a while.
  const elapsed = Math.max(0, Date.now() - issuedAt);
  const timerMs = Math.min(deadlineMs, Math.max(deadlineMs - elapsed, 2 * t.pollInterval, 1000));
  rec.deadlineAt = new Date(Date.now() + timerMs).toISOString();

  const pollScope = new CancellationScope();
  const timerScope = new CancellationScope();
  const poll = pollScope
    .run(() => a.comeback.awaitComeback(profile, bootIdBefore, t.pollInterval))
    .then((r) => ({ kind: 'back' as const, r }), (err: unknown) => ({ kind: 'error' as const, err }));
  const timer = timerScope
    .run(() => sleep(timerMs))
    .then(() => ({ kind: 'deadline' as const }), (err: unknown) => ({ kind: 'error' as const, err }));

  const first = await Promise.race([poll, timer]);
  if (first.kind === 'deadline') {
    pollScope.cancel();
    await poll; // settles at once (TRY_CANCEL); the activity stops at its next heartbeat
    run.end(rec, 'timed-out', `no new boot answered within ${formatDurationMs(deadlineMs)} of the reboot`);
    return { kind: 'deadline' };
  }
  timerScope.cancel();
  await timer;
  if (first.kind === 'error') {
    // The whole workflow is being cancelled: let the caller clean up.
    if (isCancellation(first.err) && CancellationScope.current().consideredCancelled) {
      run.end(rec, 'cancelled');
      throw first.err;
    }
    const reason = describeError(first.err);
    run.end(rec, 'failed', reason);
    run.notice(`${name} failed: ${reason}`);
    const hostKeyChanged = failureType(first.err) === FailureTypes.HostKeyMismatch;
    return { kind: 'failed', reason, deadlineAt: issuedAt + deadlineMs, hostKeyChanged };
  }
  const back = first.r;
  run.end(
    rec,
    'ok',
    `slot ${back.slot} (${back.rootDevice}), boot ${back.bootId}, answered ${formatDurationMs(Math.max(0, back.answeredAt - issuedAt))} after the reboot (${back.probes} probes)`,
  );
  return { kind: 'back', ...back };
}

/**
 * Why a watch that did not see the host come back ended: "host did not come back on slot b
 * within 5m00s", or "waiting for the host to come back on slot b failed: <cause>".
 */
export function comebackMissed(slot: SlotName, deadlineMs: number, c: Exclude<Comeback, { kind: 'back' }>): string {
  return c.kind === 'failed'
    ? `waiting for the host to come back on slot ${slot} failed: ${c.reason}`
    : `host did not come back on slot ${slot} within ${formatDurationMs(deadlineMs)}`;
}

/**
 * After a watch that failed before its deadline, the rest of that deadline: the host may still
 * be booting, and nothing should reset it before its time is up. Not after a changed host key:
 * that host has booted, and waiting only keeps it up with keys nobody trusts. (Runs recorded
 * before this rule waited, hence the patch marker.)
 */
export async function waitOutDeadline(c: Comeback | undefined): Promise<void> {
  if (c?.kind !== 'failed') return;
  if (c.hostKeyChanged && patched('hostkey-comeback-no-wait')) return;
  const rest = c.deadlineAt - Date.now();
  if (rest > 0) await sleep(rest);
}
