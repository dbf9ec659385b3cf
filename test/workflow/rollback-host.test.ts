// rollbackHost: later return of a committed host to its previous slot.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { approveUpdate, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { rollbackHost, upgradeHost } from '../../workflows/index.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

test('after a committed upgrade, rollbackHost (approved) returns the host to slot a and commits it', async () => {
  const fake = newFake();
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    await worker.runUntil(async () => {
      const up = await env.client.workflow.execute(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
      expect(up.state).toBe('committed');
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
  } finally {
    fake.dispose();
  }
});

test('rollbackHost whose previous slot does not come back: power reset lands on the current slot, rollback abandoned', async () => {
  const fake = newFake();
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    await worker.runUntil(async () => {
      const up = await env.client.workflow.execute(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
      expect(up.state).toBe('committed');

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
  } finally {
    fake.dispose();
  }
});
