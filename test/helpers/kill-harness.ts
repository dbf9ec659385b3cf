// Test side of the worker-kill tests: worker-1 runs in a child process over persisted fake hosts
// (./fake-worker-process.ts) and is killed with SIGKILL; worker-2 takes over in the test process,
// over the hosts restored from the same state files. Also: waiting for a host's call to block at
// its hang point, and making the server notice a killed activity at once instead of after its
// timeout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { temporal } from '@temporalio/proto';
import type { Worker, WorkerOptions } from '@temporalio/worker';
import type { HostActivities } from '../../lib/contract.js';
import {
  PersistentFakeFleet,
  createPersistentFakeWorker,
  readPersistedHost,
  startFakeWorkerProcess,
  type FakeWorkerProcess,
  type FleetHost,
  type PersistedCall,
  type PersistedHost,
} from './fake-worker-process.js';
import { eventually, type WorkflowEnv } from './workflow-env.js';

const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rejects after `ms` (so no wait in a kill test is unbounded). */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export const callsOf = (s: PersistedHost, name: keyof HostActivities): PersistedCall[] => s.calls.filter((c) => c.name === name);

/** Identities of the workers that completed the workflow's tasks, sorted. */
export async function workflowTaskIdentities(handle: WorkflowHandle): Promise<string[]> {
  const ids = new Set<string>();
  for (const ev of (await handle.fetchHistory()).events ?? []) {
    const id = ev.workflowTaskCompletedEventAttributes?.identity;
    if (id) ids.add(id);
  }
  return [...ids].sort();
}

/** Child worker processes and take-over workers of one test file; dispose() cleans up. */
export class KillHarness {
  readonly dir: string;
  private readonly bundlePath: string;
  private readonly children: FakeWorkerProcess[] = [];
  private readonly fleets: PersistentFakeFleet[] = [];

  constructor(private readonly env: WorkflowEnv) {
    this.dir = mkdtempSync(join(tmpdir(), 'ab-upgrade-worker-kill-'));
    // The children load the bundle the test file built instead of bundling the workflows again.
    this.bundlePath = join(this.dir, 'workflow-bundle.js');
    writeFileSync(this.bundlePath, env.bundle.code);
  }

  stateFile(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  /**
   * Starts worker-1 as a child process over the hosts' state files; resolves once it polls. It
   * logs at DEBUG, and its output joins the file's secret scan (./secret-scan.ts).
   */
  async child(taskQueue: string, hosts: FleetHost[]): Promise<FakeWorkerProcess> {
    const w = startFakeWorkerProcess({ address: this.env.address, taskQueue, hosts, identity: 'worker-1', bundlePath: this.bundlePath, logLevel: 'DEBUG' });
    this.children.push(w);
    this.env.addWorkerLog({ where: `worker process ${this.children.length} (pid ${w.child.pid ?? '?'})`, text: w.output });
    await w.ready;
    return w;
  }

  /** SIGKILLs a child; resolves once it is gone, rejects if it was not running or ended otherwise. */
  async sigkill(w: FakeWorkerProcess): Promise<void> {
    if (!w.child.kill('SIGKILL')) throw new Error(`worker-1 could not be signalled:\n${w.output()}`);
    const exit = await bounded(w.exited, 10_000, 'worker-1 exit after SIGKILL');
    if (exit.signal !== 'SIGKILL') throw new Error(`worker-1 ended with ${JSON.stringify(exit)}, not by SIGKILL:\n${w.output()}`);
  }

  /** worker-2 in this process, over the hosts restored from their state files. */
  async takeOver(taskQueue: string, hosts: FleetHost[], options?: Partial<WorkerOptions>): Promise<{ fleet: PersistentFakeFleet; worker: Worker }> {
    const fleet = new PersistentFakeFleet(hosts, 'worker-2');
    this.fleets.push(fleet);
    const worker = await createPersistentFakeWorker({ connection: this.env.connection, fleet, taskQueue, workflowBundle: this.env.bundle, options });
    return { fleet, worker };
  }

  async dispose(): Promise<void> {
    for (const c of this.children) {
      if (c.alive()) {
        c.child.kill('SIGKILL');
        await Promise.race([c.exited, sleep(5_000)]);
      }
    }
    for (const f of this.fleets) f.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once the state file says a call blocks at `marker` (FakeHostScript.hang). */
export async function waitForHang(stateFile: string, marker: string, timeoutMs = 60_000): Promise<PersistedHost> {
  try {
    return await eventually(
      async () => {
        const s = readPersistedHost(stateFile);
        return s.hangingIn === marker ? s : undefined;
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    const s = readPersistedHost(stateFile);
    const calls = s.calls.map((c) => `${c.name}#${c.attempt}`).join(', ');
    throw new Error(`no call blocked at ${marker} within ${timeoutMs} ms (blocked at: ${s.hangingIn ?? 'none'}; calls: ${calls})`, { cause: err });
  }
}

/**
 * Makes the server time out the running attempt of `activityType` now, as it would once the
 * attempt's own timeout ran out; resolves with the failure that ended the attempt.
 *
 * The server notices a killed worker's activity only through a timeout of the running attempt,
 * and the runbook's are long (a 30 s heartbeat timeout, up to 15 min start-to-close). This sets
 * the attempt's start-to-close timeout to 1 s with UpdateActivityOptions (what `temporal activity
 * update-options` sends; counted from the attempt's start, so it expires at once), waits until
 * the server has timed the attempt out, and, if a retry is pending, restores the options the
 * activity was scheduled with, so the retry runs under the runbook's own timeouts. Call it while
 * no worker polls the task queue, or the retry could start before the restore.
 */
export async function expireRunningAttempt(
  client: Client,
  handle: WorkflowHandle,
  activityType: keyof HostActivities,
): Promise<temporal.api.failure.v1.IFailure | null | undefined> {
  const pending = async () => (await handle.describe()).raw.pendingActivities ?? [];
  // Already timed out by its heartbeat timeout (the worker died a while ago): a retry waits for a
  // worker, or the activity is no longer pending (not retried).
  const running = await eventually(async () => {
    const a = (await pending()).find((p) => p.activityType?.name === activityType);
    if (!a) return (await timedOutFailure(handle, activityType)) ? { gone: true as const } : undefined;
    return a.state === STARTED || (a.attempt ?? 1) > 1 ? a : undefined;
  }, 10_000, 50);
  if ('gone' in running) return timedOutFailure(handle, activityType);
  if (running.state !== STARTED) return running.lastFailure;
  const id = running.activityId!;
  const attempt = running.attempt ?? 1;
  const { runId } = await handle.describe();
  const target = { namespace: client.options.namespace, execution: { workflowId: handle.workflowId, runId }, id, identity: 'kill test' };
  await client.workflowService.updateActivityOptions({
    ...target,
    activityOptions: { startToCloseTimeout: msToTs('1s') },
    updateMask: { paths: ['start_to_close_timeout'] },
  });
  const retry = await eventually(
    async () => {
      const a = (await pending()).find((p) => p.activityId === id);
      // No retry: the attempt's failure is the activity's, in its ActivityTaskTimedOut event,
      // which the history shows only once no workflow task of the killed worker holds it back.
      if (!a) {
        const failure = await timedOutFailure(handle, activityType);
        return failure ? { next: null, failure } : undefined;
      }
      return (a.attempt ?? 1) > attempt ? { next: a, failure: a.lastFailure } : undefined;
    },
    30_000,
    50,
  );
  // Read before the restore, which clears the pending activity's last failure.
  if (retry.next) await client.workflowService.updateActivityOptions({ ...target, restoreOriginal: true });
  return retry.failure;
}

/** The failure in the ActivityTaskTimedOut event of `activityType` (the last one), if any. */
async function timedOutFailure(handle: WorkflowHandle, activityType: keyof HostActivities): Promise<temporal.api.failure.v1.IFailure | null | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType).map((e) => String(e.eventId)));
  return events.filter((e) => e.activityTaskTimedOutEventAttributes && scheduled.has(String(e.activityTaskTimedOutEventAttributes.scheduledEventId))).at(-1)
    ?.activityTaskTimedOutEventAttributes?.failure;
}

/**
 * From the finished run's history, the failure that ended the first attempt of `activityType`
 * that did not complete: the retry's last failure (its ActivityTaskStarted event), or, when the
 * activity was not retried, its ActivityTaskTimedOut event's.
 */
export async function killedAttemptFailure(handle: WorkflowHandle, activityType: keyof HostActivities): Promise<temporal.api.failure.v1.IFailure | null | undefined> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Set(events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType).map((e) => String(e.eventId)));
  const retried = events
    .map((e) => e.activityTaskStartedEventAttributes)
    .find((a) => a && scheduled.has(String(a.scheduledEventId)) && (a.attempt ?? 1) > 1);
  return retried ? retried.lastFailure : timedOutFailure(handle, activityType);
}
