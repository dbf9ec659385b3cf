// The live part of a host's status that only the Temporal server holds: its pending activities
// (WorkflowHandle.describe()), each with its attempt, the previous attempt's failure, its
// heartbeat times and details. Payloads and failures go through the client's data converter, so
// this works with the payload codec on (lib/codec.ts).
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { LoadedDataConverter } from '@temporalio/common';
import { decodeFromPayloadsAtIndex, decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { optionalTsToMs } from '@temporalio/common/lib/time.js';
import type { temporal } from '@temporalio/proto';
import { hostWorkflowId } from '../lib/profile.js';
import { isFinalState, type WorkflowStatus } from '../lib/workflow-api.js';
import { describeError } from '../workflows/describe.js';
import { healthProgress, installProgress, type LiveStatus, type PendingActivity } from './progress-format.js';
import { redactSecrets } from './progress-redact.js';

type RawPending = temporal.api.workflow.v1.IPendingActivityInfo;

const STATES: Record<number, PendingActivity['state']> = { 1: 'scheduled', 2: 'started', 3: 'cancel-requested' };

const iso = (ts: RawPending['lastHeartbeatTime']): string | undefined => {
  const ms = optionalTsToMs(ts as never);
  return ms ? new Date(ms).toISOString() : undefined;
};

/** One pending activity, its details and failure decoded (and redacted). */
export async function pendingActivity(converter: LoadedDataConverter, p: RawPending): Promise<PendingActivity> {
  const details = p.heartbeatDetails?.payloads?.length
    ? await decodeFromPayloadsAtIndex(converter, 0, p.heartbeatDetails.payloads).catch(() => undefined)
    : undefined;
  const failure = p.lastFailure ? await decodeOptionalFailureToOptionalError(converter, p.lastFailure as never).catch(() => undefined) : undefined;
  const progress = installProgress(details);
  const a: PendingActivity = {
    activity: p.activityType?.name ?? '?',
    state: p.paused ? 'paused' : (STATES[Number(p.state ?? 0)] ?? 'unknown'),
    attempt: p.attempt ?? 1,
    maximumAttempts: p.maximumAttempts ? p.maximumAttempts : null,
  };
  if (failure) a.lastError = redactSecrets(describeError(failure));
  const times = { lastStartedAt: p.lastStartedTime, lastHeartbeatAt: p.lastHeartbeatTime, nextAttemptAt: p.nextAttemptScheduleTime, expiresAt: p.expirationTime };
  for (const [k, ts] of Object.entries(times)) {
    const v = iso(ts);
    if (v) a[k as keyof typeof times] = v;
  }
  if (progress) a.progress = progress;
  const health = healthProgress(details);
  // Check names come from the profile; a command's default name is its text.
  if (health) a.health = { round: health.round, failing: health.failing.map(redactSecrets) };
  return a;
}

/** The workflow's pending activities, as the server describes them now. */
export async function pendingActivities(client: Client, handle: WorkflowHandle): Promise<PendingActivity[]> {
  const d = await handle.describe();
  if (d.status.name !== 'RUNNING') return [];
  const converter = client.options.loadedDataConverter;
  return Promise.all((d.raw.pendingActivities ?? []).map((p) => pendingActivity(converter, p)));
}

/** `status` while the run goes on: the query's answer plus its pending activities. */
export async function withLive(client: Client, host: string, s: WorkflowStatus): Promise<LiveStatus> {
  if (isFinalState(s.state)) return s;
  const activities = await pendingActivities(client, client.workflow.getHandle(hostWorkflowId(host)));
  return activities.length ? { ...s, activities } : s;
}
