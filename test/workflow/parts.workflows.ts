// Small workflows that run one building block of the host workflows alone: the compensation
// stack and the comeback watch. Bundled by test/workflow/parts.test.ts only; never registered
// by the real worker.
import { condition, proxyActivities } from '@temporalio/workflow';
import type { Profile } from '../../lib/profile.js';
import type { WorkflowStatus } from '../../lib/workflow-api.js';
import { activitiesFor } from '../../workflows/activity-options.js';
import { waitOutDeadline, watchComeback, type Comeback } from '../../workflows/comeback.js';
import { describeError } from '../../workflows/describe.js';
import { setHandlers } from '../../workflows/handlers.js';
import { HostRun } from '../../workflows/host-run.js';
import { Saga } from '../../workflows/saga.js';

/** Test activities that change (and undo changes to) a pretend host, recording each call. */
export interface StepActivities {
  /** Makes the change `what`; `fail` makes it fail before making it, or after. */
  change(what: string, fail?: 'before' | 'after'): Promise<string>;
  undo(what: string, fail?: boolean): Promise<void>;
}

export interface SagaPlan {
  profile: Profile;
  steps: { what: string; fail?: 'before' | 'after' }[];
  /** Undos that fail. */
  failingUndos?: string[];
  /** After the steps, wait until cancelled. */
  waitForCancel?: boolean;
}

/** Runs the steps through a Saga; any failure unwinds it (twice, to show it is emptied). */
export async function sagaSteps(plan: SagaPlan): Promise<{ status: WorkflowStatus; error?: string }> {
  const run = new HostRun('upgradeHost', { profile: plan.profile });
  setHandlers(run);
  const saga = new Saga(run);
  const act = proxyActivities<StepActivities>({ startToCloseTimeout: '10s', retry: { maximumAttempts: 1 } });
  try {
    for (const s of plan.steps) {
      await saga.step(
        'addBootEntry',
        { phase: 'compensate.removeBootEntry', run: () => act.undo(s.what, plan.failingUndos?.includes(s.what)), otherwise: `check ${s.what} by hand` },
        () => act.change(s.what, s.fail),
      );
    }
    if (plan.waitForCancel) await condition(() => false);
    return { status: run.status };
  } catch (err) {
    await saga.unwind();
    await saga.unwind();
    if (plan.waitForCancel) throw err;
    return { status: run.status, error: describeError(err) };
  }
}

export interface WatchPlan {
  profile: Profile;
  bootIdBefore: string;
  deadlineMs: number;
  /** The reboot was issued this long before the watch starts. */
  issuedAgoMs?: number;
  /** After a failed watch, wait out the rest of its deadline. */
  waitOut?: boolean;
}

/** One comeback watch; `waitedUntil`: the workflow time when waiting out a failed watch's deadline ended. */
export async function comebackWatch(plan: WatchPlan): Promise<{ comeback: Comeback; status: WorkflowStatus; issuedAt: number; waitedUntil?: number }> {
  const { profile } = plan;
  const run = new HostRun('upgradeHost', { profile });
  setHandlers(run);
  const issuedAt = Date.now() - (plan.issuedAgoMs ?? 0);
  const comeback = await watchComeback(run, activitiesFor(profile), profile, 'awaitComeback', plan.bootIdBefore, issuedAt, plan.deadlineMs);
  if (!plan.waitOut) return { comeback, status: run.status, issuedAt };
  await waitOutDeadline(comeback);
  return { comeback, status: run.status, issuedAt, waitedUntil: Date.now() };
}
