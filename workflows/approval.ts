// The human gate before a reboot: wait (a durable timer of profile.timings.approvalTimeout) for
// approve or reject; a timeout is a rejection. `autoApprove` skips the wait.
import { workflowInfo } from '@temporalio/workflow';
import { formatDurationMs } from '../lib/duration.js';
import type { Decision, UpgradeInput } from '../lib/workflow-api.js';
import type { Inbox } from './handlers.js';
import { nowIso, type HostRun } from './host-run.js';

/** Waits for the decision on `what` (one line: "reboot web-1 into slot b (...)") and records it. */
export async function awaitApproval(run: HostRun, inbox: Pick<Inbox, 'awaitDecision' | 'settle'>, input: UpgradeInput, what: string): Promise<Decision> {
  const { profile } = input;
  const rec = run.begin('approval');
  if (input.autoApprove) {
    const d = inbox.settle({ approved: true, by: input.requestedBy ?? 'autoApprove', at: nowIso(), via: 'auto' });
    run.status.decision = d;
    run.end(rec, 'skipped', `autoApprove (requested by ${d.by})`);
    return d;
  }
  const timeout = profile.timings.approvalTimeout;
  rec.deadlineAt = new Date(Date.now() + timeout).toISOString();
  run.setState(
    'awaiting-approval',
    `approval to ${what} (within ${formatDurationMs(timeout)}): ` +
      `ab-upgrade approve ${profile.name} (or: ab-upgrade reject ${profile.name} --reason "..."), or ` +
      `temporal workflow update execute --workflow-id '${workflowInfo().workflowId}' --name approve --input '{"by":"<you>"}'`,
  );
  let decided: Decision | undefined;
  try {
    decided = await inbox.awaitDecision(timeout);
  } catch (err) {
    run.end(rec, 'cancelled');
    throw err;
  }
  run.setState('running');
  const d =
    decided ??
    inbox.settle({ approved: false, by: 'timeout', reason: `nobody approved within ${formatDurationMs(timeout)}`, at: nowIso(), via: 'timeout' });
  run.status.decision = d;
  run.end(
    rec,
    d.approved ? 'ok' : d.via === 'timeout' ? 'timed-out' : 'rejected',
    d.via === 'timeout' ? d.reason : `${d.approved ? 'approved' : 'rejected'} by ${d.by}${d.reason ? `: ${d.reason}` : ''} (${d.via})`,
  );
  return d;
}
