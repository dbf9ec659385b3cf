// Starting a host's workflow and following its phases live; shared by the CLI and the lab.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { userInfo } from 'node:os';
import { formatPhase } from '../lib/format-status.js';
import { hostWorkflowId, type Profile } from '../lib/profile.js';
import { isFinalState, startOptions, statusQuery, TASK_QUEUE, WorkflowTypes, type WorkflowStatus } from '../lib/workflow-api.js';
import { formatLive, liveKey, type LiveStatus } from './progress-format.js';
import { withLive } from './progress.js';
import { connectClient, hostStatus } from './temporal.js';

export const me = () => process.env.AB_UPGRADE_USER ?? userInfo().username;

export class AlreadyRunningError extends Error {}

/** Same variable as the worker's (worker/main.ts), so a non-default queue is set in one place. */
export const taskQueue = () => process.env.AB_UPGRADE_TASK_QUEUE ?? TASK_QUEUE;

export async function startHostWorkflow(client: Client, type: keyof typeof WorkflowTypes, profile: Profile, autoApprove: boolean, extra: { carryBack?: boolean } = {}) {
  try {
    return await client.workflow.start(WorkflowTypes[type], { ...startOptions(profile, taskQueue()), args: [{ profile, autoApprove, requestedBy: me(), ...extra }] });
  } catch (e) {
    if (e instanceof WorkflowExecutionAlreadyStartedError)
      throw new AlreadyRunningError(
        `an upgrade or rollback of ${profile.name} is already running (workflow ${hostWorkflowId(profile.name)}); see: ab-upgrade status ${profile.name}`,
      );
    throw e;
  }
}

/**
 * Prints timeline changes until the workflow ends (or, with untilFinal false, waits for a human),
 * and what the running phase is doing when that changes (retries, install progress; see
 * client/progress.ts for statuses that carry it).
 */
export async function follow<S extends LiveStatus>(getStatus: () => Promise<S>, print: (line: string) => void, untilFinal = true): Promise<S> {
  const seen = new Map<number, string>();
  let lastWait = '';
  let lastLive = '';
  for (;;) {
    const s = await getStatus();
    s.timeline.forEach((p, i) => {
      const text = formatPhase(p);
      if (seen.get(i) !== text && (p.endedAt || !seen.has(i))) print(text);
      seen.set(i, text);
    });
    if (s.waitingFor && s.waitingFor !== lastWait) print(`waiting for: ${s.waitingFor}`);
    lastWait = s.waitingFor ?? '';
    const live = liveKey(s);
    if (live !== lastLive && !isFinalState(s.state)) formatLive(s, Date.now()).forEach((l) => print(`    ${l}`));
    lastLive = live;
    if (isFinalState(s.state) || (!untilFinal && s.state.startsWith('awaiting'))) return s;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The lab's one-shot: start a pre-approved upgrade, print phases as they end, return the final status. */
export async function startUpgradeAndFollow(profile: Profile): Promise<WorkflowStatus> {
  const client = await connectClient();
  const handle = await startHostWorkflow(client, 'upgradeHost', profile, true);
  console.log(`started ${handle.workflowId}; phases:`);
  await follow(async () => withLive(client, profile.name, await handle.query(statusQuery)), console.log);
  return (await hostStatus(client, profile.name))!;
}
