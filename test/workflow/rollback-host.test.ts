// rollbackHost: later return of a committed host to its previous slot.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { approveUpdate, finalStatusFrom, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { rollbackHost, upgradeHost } from '../../workflows/index.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

/** A fresh fake host and its worker on a task queue of its own; the host was upgraded to b first. */
async function withUpgradedHost(body: (fake: ReturnType<typeof newFake>, profile: ReturnType<typeof fakeProfile>, taskQueue: string) => Promise<void>) {
  const fake = newFake();
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    await worker.runUntil(async () => {
      const up = await env.client.workflow.execute(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
      expect(up.state).toBe('committed');
      await body(fake, profile, taskQueue);
    });
  } finally {
    fake.dispose();
  }
}

test('after a committed upgrade, rollbackHost (approved) returns the host to slot a and commits it', async () => {
  await withUpgradedHost(async (fake, profile, taskQueue) => {
    expect(fake.running).toBe('b');
    expect(fake.defaultSlot).toBe('b');

    // "After an arbitrary period of time": same workflow id, a new run.
    const handle = await env.client.workflow.start(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, requestedBy: 'ops' }] });
    const waiting = await eventually(async () => {
      const s = await handle.query(statusQuery);
      return s.state === 'awaiting-approval' ? s : undefined;
    });
    expect(waiting.workflowType).toBe('rollbackHost');
    expect(waiting.fromSlot).toBe('b');
    expect(waiting.toSlot).toBe('a');

    // While it runs, no upgrade can start for this host.
    await expect(
      env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile }] }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);

    await handle.executeUpdate(approveUpdate, { args: [{ by: 'frank', reason: 'app regression on trixie' }] });
    const result = await handle.result();
    expect(result.state).toBe('committed');
    expect(result.timeline.map((p) => p.phase)).toEqual([
      'inspect',
      'approval',
      'rebootToSlot',
      'awaitComeback',
      'checkHealth',
      'commitSlot',
      'measureHostDowntime',
    ]);
    expect(fake.argsOf('rebootToSlot')[0]?.slice(1)).toEqual(['a', true]); // one-time boot
    expect(fake.argsOf('commitSlot').at(-1)?.[1]).toBe('a');
    expect(fake.running).toBe('a');
    expect(fake.defaultSlot).toBe('a');
    expect(result.downtime?.downtimeMs).toBeGreaterThan(0);
  });
});

test('rollbackHost whose previous slot does not come back: power reset lands on the current slot, rollback abandoned', async () => {
  await withUpgradedHost(async (fake, profile, taskQueue) => {

    fake.script.hangOnBootInto = ['a']; // slot a has rotted meanwhile
    const result = await env.client.workflow.execute(rollbackHost, {
      ...startOptions(profile, taskQueue),
      args: [{ profile, autoApprove: true }],
    });
    expect(result.state).toBe('rolled-back');
    expect(result.reason).toBe('host did not come back on slot a within 3.0s; rollback abandoned, host returned to slot b');
    expect(fake.count('powerReset')).toBe(1);
    expect(fake.running).toBe('b');
    expect(fake.defaultSlot).toBe('b');
    expect(fake.argsOf('commitSlot').map((a) => a[1])).toEqual(['b']); // only the upgrade's commit
  });
});

test('rollbackHost whose previous slot is unhealthy: back to the current slot over SSH, rollback abandoned', async () => {
  await withUpgradedHost(async (fake, profile, taskQueue) => {
    fake.script.healthFailsOn = ['a'];
    const result = await env.client.workflow.execute(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
    expect(result.state).toBe('rolled-back');
    expect(result.reason).toBe('health checks failed on slot a: 1 of 1 checks failed: nginx.service: failed (Result: exit-code); rollback abandoned');
    expect(fake.argsOf('rebootToSlot').map((a) => a.slice(1))).toEqual([
      ['a', true],
      ['b', false],
    ]);
    expect(fake.running).toBe('b');
    expect(fake.defaultSlot).toBe('b');
    expect(result.health?.ok).toBe(true); // slot b's, after the return
  });
});

test('rollbackHost with carryBack carries the configuration onto the previous slot right before the reboot', async () => {
  await withUpgradedHost(async (fake, profile, taskQueue) => {
    const result = await env.client.workflow.execute(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, carryBack: true }] });
    expect(result.state).toBe('committed');
    expect(result.timeline.map((p) => p.phase).slice(0, 4)).toEqual(['inspect', 'approval', 'carryBack', 'rebootToSlot']);
    // Onto the previous slot: the facts' spare is slot a while b runs.
    expect((fake.argsOf('carryBack')[0]?.[0] as { spare: { name: string } }).spare.name).toBe('a');
    expect(result.carry?.usersMerged).toEqual(['alice']);
    expect(fake.running).toBe('a');

    // Without the option nothing is carried back.
    await env.client.workflow.execute(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
    expect(fake.count('carryBack')).toBe(1);
  });
});

test('a failed carry-back ends the rollback before any reboot: the host stays where it is', async () => {
  await withUpgradedHost(async (fake, profile, taskQueue) => {
    fake.script.fail = { carryBack: 'cp: No space left on device' };
    const handle = await env.client.workflow.start(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, carryBack: true }] });
    const s = await handle.result().then(
      (r) => r,
      (e: unknown) => finalStatusFrom(e),
    );
    expect(s?.state).toBe('failed');
    expect(s?.reason).toMatch(/No space left on device/);
    expect(fake.count('rebootToSlot')).toBe(0);
    expect(fake.running).toBe('b');
    expect(fake.defaultSlot).toBe('b');
  });
});
