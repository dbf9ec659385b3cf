// How a host workflow's run ends when it does not reboot: rejected, failed or cancelled. (After
// a reboot, switchSlot ends the run: committed, rolled back, or cancelled once the host is back.)
// Each runs the compensations first.
import { ApplicationFailure, CancellationScope, isCancellation } from '@temporalio/workflow';
import { UPGRADE_FAILED, type Decision, type WorkflowStatus } from '../lib/workflow-api.js';
import { describeError } from './describe.js';
import type { HostRun } from './host-run.js';
import type { Saga } from './saga.js';

/** Not approved (rejected, or nobody answered in time): compensations, then 'rejected'. */
export async function endRejected(run: HostRun, saga: Pick<Saga, 'unwind'>, d: Decision): Promise<WorkflowStatus> {
  await saga.unwind();
  const reason = d.via === 'timeout' ? `approval timed out: ${d.reason}` : `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
  return run.finish('rejected', reason);
}

/**
 * The catch-all of a host workflow: compensations, then the execution fails with a
 * non-retryable `UpgradeFailed` carrying the final status (see UPGRADE_FAILED in
 * lib/workflow-api.ts). A cancellation ends the run 'cancelled' instead.
 */
export async function endFailed(run: HostRun, saga: Pick<Saga, 'unwind'>, err: unknown): Promise<never> {
  if (run.ended) throw err; // switchSlot ended it, cancelled, and passes the cancellation on
  if (isCancellation(err)) return endCancelled(run, saga, err);
  const failedPhase = run.status.phase;
  await saga.unwind();
  const status = run.finish('failed', `${failedPhase} failed: ${describeError(err)}`);
  throw ApplicationFailure.create({
    message: status.reason,
    type: UPGRADE_FAILED,
    nonRetryable: true,
    details: [status],
    cause: err instanceof Error ? err : undefined,
  });
}

/**
 * Cancelled: bring the host back first if a reboot was issued (`bringBack`), then the
 * compensations, not cancellable; the run ends 'cancelled' and the cancellation is thrown on,
 * so the execution ends cancelled.
 */
export async function endCancelled(run: HostRun, saga: Pick<Saga, 'unwind'>, err: unknown, bringBack?: () => Promise<void>): Promise<never> {
  const during = run.status.phase;
  await CancellationScope.nonCancellable(async () => {
    await bringBack?.();
    await saga.unwind();
  });
  run.finish('cancelled', `cancelled during ${during}`);
  throw err;
}
