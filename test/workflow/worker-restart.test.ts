// Durability: the worker running an upgrade goes away mid-upgrade; a new worker on the same task
// queue carries it on to the end, and no side effect happens more often than it should.
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { HostActivities } from '../../lib/contract.js';
import { approveUpdate, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

const ONCE: (keyof HostActivities)[] = [
  'inspectHost',
  'prepareSpare',
  'carryConfig',
  'addBootEntry',
  'finalSync',
  'trialBoot',
  'awaitComeback',
  'checkHealth',
  'commitSlot',
  'measureHostDowntime',
];

test('worker shut down while awaiting approval; a new worker finishes the upgrade', async () => {
  const fake = newFake();
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  try {
    const first = await fakeWorker(env, fake, taskQueue, 'worker-1');
    const firstRun = first.run();
    const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile }] });
    await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval');
    first.shutdown();
    await firstRun;

    const second = await fakeWorker(env, fake, taskQueue, 'worker-2');
    const result = await second.runUntil(async () => {
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
      return handle.result();
    });

    expect(result.state).toBe('committed');
    expect(fake.running).toBe('b');
    for (const name of [...ONCE, 'installRelease' as const]) expect(fake.count(name), name).toBe(1);
    expect(fake.count('removeBootEntry') + fake.count('rebootToSlot') + fake.count('powerReset')).toBe(0);
    // The history shows both workers.
    const identities = new Set<string>();
    for await (const ev of (await handle.fetchHistory()).events ?? []) {
      const id = ev.workflowTaskCompletedEventAttributes?.identity;
      if (id) identities.add(id);
    }
    expect([...identities].sort()).toEqual(['worker-1', 'worker-2']);
  } finally {
    fake.dispose();
  }
});

test('worker shut down during a slow install; the new worker retries it from its heartbeat and finishes', async () => {
  const fake = newFake({ installDelayMs: 3000 });
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  try {
    const first = await fakeWorker(env, fake, taskQueue, 'worker-1');
    const firstRun = first.run();
    const handle = await env.client.workflow.start(upgradeHost, {
      ...startOptions(profile, taskQueue),
      args: [{ profile, autoApprove: true }],
    });
    await eventually(async () => fake.count('installRelease') === 1);
    await new Promise((r) => setTimeout(r, 1200)); // some heartbeats recorded
    first.shutdown(); // the running install is cancelled after the grace time (1 s)
    await firstRun;
    expect((await handle.describe()).status.name).toBe('RUNNING');

    const second = await fakeWorker(env, fake, taskQueue, 'worker-2');
    const result = await second.runUntil(handle.result());

    expect(result.state).toBe('committed');
    expect(fake.running).toBe('b');
    // The install ran twice (it is idempotent and resumes from its heartbeat details)...
    expect(fake.count('installRelease')).toBe(2);
    expect(fake.installResumedFrom[0]).toBe(0);
    expect(fake.installResumedFrom[1]).toBeGreaterThan(0);
    // ...and every other side effect exactly once: above all, one reboot.
    for (const name of ONCE) expect(fake.count(name), name).toBe(1);
  } finally {
    fake.dispose();
  }
});
