// Building blocks of the host workflows, each run alone in a small workflow
// (./parts.workflows.ts) on the real Temporal dev server: the compensation stack (saga.ts) and
// the comeback watch's outcomes (comeback.ts).
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/activity';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FailureTypes } from '../../lib/contract.js';
import { statusQuery, type WorkflowStatus } from '../../lib/workflow-api.js';
import type { FakeHost, FakeHostScript } from '../helpers/fake-host.js';
import { eventually, fakeProfile, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';
import { comebackWatch, sagaSteps, type SagaPlan, type StepActivities, type WatchPlan } from './parts.workflows.js';

let env: WorkflowEnv;
let bundle: WorkflowBundle;
beforeAll(async () => {
  [env, bundle] = await Promise.all([
    setupWorkflowEnv(),
    bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('./parts.workflows.ts', import.meta.url)), logger: new DefaultLogger('ERROR') }),
  ]);
});
afterAll(async () => {
  await env?.close();
});

/** What the step activities did to the pretend host, in order. */
type Effects = string[];

function stepActivities(effects: Effects): StepActivities {
  const fail = (what: string) => ApplicationFailure.nonRetryable(`${what} failed`, FailureTypes.CommandFailed);
  return {
    async change(what, when) {
      if (when === 'before') throw fail(what);
      effects.push(`change ${what}`);
      if (when === 'after') throw fail(what);
      return what;
    },
    async undo(what, failing) {
      if (failing) throw fail(`undo ${what}`);
      effects.push(`undo ${what}`);
    },
  };
}

/** A worker for the part workflows on its own task queue, over a fake host and the step activities. */
async function withWorker<T>(script: FakeHostScript, body: (w: { fake: FakeHost; effects: Effects; taskQueue: string }) => Promise<T>): Promise<T> {
  const fake = newFake(script);
  const effects: Effects = [];
  const taskQueue = uniqueName('tq-parts');
  const worker = await Worker.create({
    connection: env.connection,
    taskQueue,
    workflowBundle: bundle,
    activities: { ...fake.activities(), ...stepActivities(effects) },
    maxHeartbeatThrottleInterval: '200ms',
    defaultHeartbeatThrottleInterval: '200ms',
    shutdownGraceTime: '1s',
  });
  try {
    return await worker.runUntil(body({ fake, effects, taskQueue }));
  } finally {
    fake.dispose();
  }
}

const startSaga = (taskQueue: string, plan: Omit<SagaPlan, 'profile'>) =>
  env.client.workflow.start(sagaSteps, { taskQueue, workflowId: uniqueName('saga'), args: [{ profile: fakeProfile(), ...plan }] });
const startWatch = (taskQueue: string, plan: Omit<WatchPlan, 'profile'>) =>
  env.client.workflow.start(comebackWatch, { taskQueue, workflowId: uniqueName('watch'), args: [{ profile: fakeProfile(), ...plan }] });

const outcomes = (s: WorkflowStatus) => s.timeline.map((p) => `${p.phase}:${p.outcome}`);

async function eventTypes(handle: WorkflowHandle): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]) ?? '?');
}

describe('saga', () => {
  test('an undo is registered before its step: a step that changed the host and then failed is undone, last first, once', async () => {
    await withWorker({}, async ({ effects, taskQueue }) => {
      const handle = await startSaga(taskQueue, { steps: [{ what: 'A' }, { what: 'B', fail: 'after' }] });
      const { status, error } = await handle.result();
      expect(error).toBe('B failed [CommandFailed]');
      // Unwound twice: the second unwind finds the stack empty.
      expect(effects).toEqual(['change A', 'change B', 'undo B', 'undo A']);
      expect(outcomes(status)).toEqual([
        'addBootEntry:ok',
        'addBootEntry:failed',
        'compensate.removeBootEntry:ok',
        'compensate.removeBootEntry:ok',
      ]);
    });
  });

  test('a step that fails before changing anything is undone too (undos are safe to run either way)', async () => {
    await withWorker({}, async ({ effects, taskQueue }) => {
      const { error } = await (await startSaga(taskQueue, { steps: [{ what: 'A' }, { what: 'B', fail: 'before' }] })).result();
      expect(error).toBe('B failed [CommandFailed]');
      expect(effects).toEqual(['change A', 'undo B', 'undo A']);
    });
  });

  test('a failing undo is noted with what to check by hand; the undos under it still run', async () => {
    await withWorker({}, async ({ effects, taskQueue }) => {
      const handle = await startSaga(taskQueue, { steps: [{ what: 'A' }, { what: 'B' }, { what: 'C', fail: 'after' }], failingUndos: ['B'] });
      const { status } = await handle.result();
      expect(effects).toEqual(['change A', 'change B', 'change C', 'undo C', 'undo A']);
      expect(outcomes(status).slice(3)).toEqual(['compensate.removeBootEntry:ok', 'compensate.removeBootEntry:failed', 'compensate.removeBootEntry:ok']);
      expect(status.notices.join('\n')).toMatch(/compensation compensate\.removeBootEntry failed: undo B failed \[CommandFailed\] — check B by hand/);
    });
  });

  test('unwinding is not cancellable: a cancelled workflow still runs its undos', async () => {
    await withWorker({}, async ({ effects, taskQueue }) => {
      const handle = await startSaga(taskQueue, { steps: [{ what: 'A' }], waitForCancel: true });
      await eventually(async () => effects.length === 1);
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      expect(effects).toEqual(['change A', 'undo A']);
      expect(outcomes(await handle.query(statusQuery))).toEqual(['addBootEntry:ok', 'compensate.removeBootEntry:ok']);
    });
  });
});

describe('comeback watch', () => {
  test("back: a new boot answers before the deadline; the deadline's timer is cancelled", async () => {
    await withWorker({}, async ({ fake, taskQueue }) => {
      const handle = await startWatch(taskQueue, { bootIdBefore: fake.bootId, deadlineMs: 10_000 });
      await eventually(async () => fake.count('awaitComeback') > 0);
      await new Promise((r) => setTimeout(r, 300)); // a few polls see the old boot
      fake.operatorReset();
      const { comeback, status } = await handle.result();
      expect(comeback).toMatchObject({ kind: 'back', slot: 'a', bootId: 'boot-2', rootDevice: '/dev/vda2' });
      expect(comeback.kind === 'back' && comeback.probes).toBeGreaterThan(1);
      expect(outcomes(status)).toEqual(['awaitComeback:ok']);
      expect(status.timeline[0]?.detail).toMatch(/^slot a \(\/dev\/vda2\), boot boot-2, answered .* after the reboot \(\d+ probes\)$/);
      expect(await eventTypes(handle)).toContain('timerCanceledEventAttributes');
    });
  });

  test('deadline: no new boot in time; the timer counts from the reboot, and the poll is cancelled', async () => {
    await withWorker({}, async ({ fake, taskQueue }) => {
      // Issued 2.5 s before the watch starts, deadline 3 s: the timer runs the 1 s floor, not 3 s.
      const handle = await startWatch(taskQueue, { bootIdBefore: fake.bootId, deadlineMs: 3_000, issuedAgoMs: 2_500 });
      const { comeback, status } = await handle.result();
      expect(comeback).toEqual({ kind: 'deadline' });
      expect(outcomes(status)).toEqual(['awaitComeback:timed-out']);
      expect(status.timeline[0]?.detail).toBe('no new boot answered within 3.0s of the reboot');
      const events = (await handle.fetchHistory()).events ?? [];
      const timer = events.find((e) => e.timerStartedEventAttributes)?.timerStartedEventAttributes;
      expect(Number(timer?.startToFireTimeout?.seconds)).toBe(1);
      expect(await eventTypes(handle)).toContain('activityTaskCancelRequestedEventAttributes');
      expect(fake.bootId).toBe('boot-1');
    });
  });

  test('failed: the poll fails for good before the deadline; the reason is returned, and the rest of the deadline can be waited out', async () => {
    await withWorker({ failFirst: { awaitComeback: 'host key of 192.0.2.10 changed' } }, async ({ taskQueue }) => {
      const handle = await startWatch(taskQueue, { bootIdBefore: 'boot-1', deadlineMs: 2_000, waitOut: true });
      const { comeback, status, issuedAt, waitedUntil } = await handle.result();
      expect(comeback).toEqual({ kind: 'failed', reason: 'host key of 192.0.2.10 changed [CommandFailed]', deadlineAt: issuedAt + 2_000, hostKeyChanged: false });
      expect(outcomes(status)).toEqual(['awaitComeback:failed']);
      expect(status.notices.join('\n')).toMatch(/awaitComeback failed: host key of 192\.0\.2\.10 changed/);
      const types = await eventTypes(handle);
      expect(types).toContain('timerCanceledEventAttributes'); // the deadline's own timer
      // The poll failed early; waitOutDeadline then slept until the deadline, counted from the reboot.
      expect(types.filter((t) => t === 'timerStartedEventAttributes')).toHaveLength(2);
      expect(waitedUntil!).toBeGreaterThanOrEqual(issuedAt + 2_000);
      expect(waitedUntil!).toBeLessThan(issuedAt + 3_500);
    });
  });

  test('cancelled: cancelling the workflow during the watch is thrown to the caller (recorded as cancelled)', async () => {
    await withWorker({}, async ({ fake, taskQueue }) => {
      const handle = await startWatch(taskQueue, { bootIdBefore: fake.bootId, deadlineMs: 30_000 });
      await eventually(async () => fake.count('awaitComeback') > 0);
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      expect(outcomes(await handle.query(statusQuery))).toEqual(['awaitComeback:cancelled']);
    });
  });
});
