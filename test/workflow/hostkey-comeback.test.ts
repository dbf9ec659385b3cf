// A new slot that boots with another SSH host key than the pinned one: the comeback watch ends
// at once (a non-retryable HostKeyMismatch from the poll), the key's fingerprint is named in the
// reason, and the runbook goes straight to its way back — the power reset, or the operator —
// without waiting out the comeback deadline and without ever trusting the key (no health check,
// no commit, no SSH reboot on that slot).
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ProfileInput } from '../../lib/profile.js';
import { hostRecoveredSignal, startOptions, statusQuery, type UpgradeResult } from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import { FAKE_NEW_HOST_KEY, type FakeHost } from '../helpers/fake-host.js';
import { bounded } from '../helpers/kill-harness.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

/** A comeback deadline far longer than the test may take: waiting it out would time the test out. */
const LONG_DEADLINE: Partial<ProfileInput> = { timings: { approvalTimeout: '5s', comebackDeadline: '10m', pollInterval: '100ms', healthTimeout: '5s' } };

async function upgrade(fake: FakeHost, profile: Partial<ProfileInput>, body: (h: WorkflowHandle<typeof upgradeHost>) => Promise<UpgradeResult>) {
  const p = fakeProfile({ ...LONG_DEADLINE, ...profile });
  const taskQueue = uniqueName('tq-hostkey');
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    return await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(p, taskQueue), args: [{ profile: p, autoApprove: true }] });
      return { handle, result: await body(handle) };
    });
  } finally {
    fake.dispose();
  }
}

/** Timers the run started that fired (a wait ran out) rather than being cancelled. */
async function firedTimers(handle: WorkflowHandle): Promise<number> {
  return ((await handle.fetchHistory()).events ?? []).filter((e) => e.timerFiredEventAttributes).length;
}

test('new host key on slot b: the watch fails at once naming the key, a power reset brings slot a back, rolled back', async () => {
  const fake = newFake({ newHostKeyOn: ['b'] });
  const { handle, result } = await upgrade(fake, {}, (h) => bounded(h.result(), 60_000, 'the rollback (it must not wait out the 10 min comeback deadline)'));

  expect(result.state).toBe('rolled-back');
  expect(result.reason).toContain('waiting for the host to come back on slot b failed: Host key verification failed');
  expect(result.reason).toContain(`the server presented ${FAKE_NEW_HOST_KEY}`);
  expect(result.reason).toContain('[HostKeyMismatch]');
  const watch = result.timeline.find((p) => p.phase === 'awaitComeback');
  expect(watch?.outcome).toBe('failed');
  expect(watch?.detail).toContain(FAKE_NEW_HOST_KEY);
  // The poll was not retried: the failure is final.
  expect(fake.count('awaitComeback')).toBe(2); // the trial's watch, and the rollback's after the reset
  // Straight to the way back: the probe refuses the key too, so no SSH reboot; one power reset.
  expect(result.timeline.map((p) => p.phase)).toEqual([
    'inspect',
    'prepareSpare',
    'installRelease',
    'carryConfig',
    'addBootEntry',
    'approval',
    'finalSync',
    'trialBoot',
    'awaitComeback',
    'rollback.probe',
    'rollback.powerReset',
    'rollback.awaitComeback',
    'rollback.checkHealth',
    'compensate.removeBootEntry',
  ]);
  expect(result.timeline.find((p) => p.phase === 'rollback.probe')?.detail).toContain(FAKE_NEW_HOST_KEY);
  // Never trusted: nothing but the probe and the poll reached slot b.
  expect(fake.count('rebootToSlot') + fake.count('commitSlot')).toBe(0);
  expect(fake.effects).toEqual(['mkfs b', 'install b', 'carry a→b', 'boot entry b', 'final sync a→b', 'trial boot → b', 'up on b', 'power reset → a', 'up on a', 'boot entry removed']);
  expect(fake.running).toBe('a');
  expect(fake.defaultSlot).toBe('a');
  // No wait ran out: the 10 min comeback deadline was not waited for (every timer was cancelled).
  expect(await firedTimers(handle)).toBe(0);
});

test('new host key on slot b, no power driver: the operator is asked at once, with the key named', async () => {
  const fake = newFake({ newHostKeyOn: ['b'] });
  const { handle, result } = await upgrade(fake, { power: { driver: 'none' } }, async (h) => {
    // Asked well before the 10 min deadline would have run out.
    const waiting = await eventually(async () => {
      const s = await h.query(statusQuery);
      return s.state === 'awaiting-operator' ? s : undefined;
    }, 60_000);
    expect(waiting.waitingFor).toContain(FAKE_NEW_HOST_KEY);
    expect(waiting.waitingFor).toMatch(/no usable power driver/);
    fake.operatorReset(); // GRUB's default: slot a, with the pinned key
    await h.signal(hostRecoveredSignal, { by: 'erin' });
    return bounded(h.result(), 60_000, 'the rollback');
  });
  expect(result.state).toBe('rolled-back');
  expect(result.reason).toContain(FAKE_NEW_HOST_KEY);
  expect(fake.count('rebootToSlot') + fake.count('commitSlot') + fake.count('powerReset')).toBe(0);
  expect(fake.running).toBe('a');
  expect(await firedTimers(handle)).toBe(0);
});
