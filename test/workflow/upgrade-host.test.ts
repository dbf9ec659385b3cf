// upgradeHost on a real Temporal dev server with a scripted fake host.
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hostWorkflowId, type Profile } from '../../lib/profile.js';
import {
  UPGRADE_FAILED,
  approveSignal,
  approveUpdate,
  finalStatusFrom,
  hostRecoveredSignal,
  rejectUpdate,
  startOptions,
  statusQuery,
  type UpgradeInput,
  type WorkflowStatus,
} from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import type { FakeHost, FakeHostScript } from '../helpers/fake-host.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

type Handle = WorkflowHandle<typeof upgradeHost>;

interface Ctx {
  fake: FakeHost;
  profile: Profile;
  handle: Handle;
  status(): Promise<WorkflowStatus>;
  waitFor(state: WorkflowStatus['state']): Promise<WorkflowStatus>;
}

/** Runs one upgrade with a fake host and a fresh worker on a unique task queue. */
async function withUpgrade(
  opts: { script?: FakeHostScript; profile?: Partial<Parameters<typeof fakeProfile>[0]>; input?: Partial<UpgradeInput> },
  body: (c: Ctx) => Promise<void>,
): Promise<void> {
  const fake = newFake(opts.script);
  const profile = fakeProfile(opts.profile);
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(upgradeHost, {
        ...startOptions(profile, taskQueue),
        args: [{ profile, requestedBy: 'test', ...opts.input }],
      });
      const status = () => handle.query(statusQuery);
      const waitFor = (state: WorkflowStatus['state']) =>
        eventually(async () => {
          const s = await status();
          return s.state === state ? s : undefined;
        });
      await body({ fake, profile, handle, status, waitFor });
    });
  } finally {
    fake.dispose();
  }
}

const phases = (s: WorkflowStatus) => s.timeline.map((p) => p.phase);

describe('upgradeHost', () => {
  test('happy path: approved by update, phases in runbook order, committed on slot b, downtime recorded', async () => {
    await withUpgrade({}, async ({ fake, handle, status, waitFor }) => {
      const waiting = await waitFor('awaiting-approval');
      expect(waiting.waitingFor).toMatch(/approve/);
      expect(waiting.fromSlot).toBe('a');
      expect(waiting.toSlot).toBe('b');
      expect(fake.count('trialBoot')).toBe(0);

      const ack = await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', reason: 'change window 42' }] });
      expect(ack).toMatchObject({ accepted: true, approved: true, by: 'alice' });

      // A second decision is refused by the validator: the workflow is no longer awaiting approval.
      await expect(handle.executeUpdate(rejectUpdate, { args: [{ by: 'mallory' }] })).rejects.toBeInstanceOf(WorkflowUpdateFailedError);

      const result = await handle.result();
      expect(result.state).toBe('committed');
      expect(result.reason).toBeUndefined();
      expect(result.decision).toMatchObject({ approved: true, by: 'alice', reason: 'change window 42', via: 'update' });
      expect(phases(result)).toEqual([
        'inspect',
        'prepareSpare',
        'installRelease',
        'carryConfig',
        'addBootEntry',
        'approval',
        'finalSync',
        'trialBoot',
        'awaitComeback',
        'checkHealth',
        'commitSlot',
        'measureHostDowntime',
      ]);
      expect(result.timeline.every((p) => p.outcome === 'ok' && p.endedAt)).toBe(true);

      const d = result.downtime!;
      expect(d.issuedAt).toBeLessThanOrEqual(d.answeredAt);
      expect(d.answeredAt).toBeLessThanOrEqual(d.healthyAt);
      expect(d.downtimeMs).toBe(d.healthyAt - d.issuedAt);
      expect(d.downtimeMs).toBeGreaterThanOrEqual(250); // the fake takes 300 ms to boot
      expect(d.hostSide).toEqual({ toSshdS: 0.4, toServicesS: 0.6 });

      expect(fake.running).toBe('b');
      expect(fake.defaultSlot).toBe('b');
      expect(fake.count('trialBoot')).toBe(1);
      expect(fake.count('removeBootEntry')).toBe(0);
      expect(fake.argsOf('commitSlot')[0]?.[1]).toBe('b');
      // The query still answers after the end.
      expect((await status()).state).toBe('committed');
    });
  });

  test('approval by signal (as `temporal workflow signal` sends it), kexec trial boot', async () => {
    await withUpgrade({ profile: { reboot: 'kexec' } }, async ({ fake, handle, waitFor }) => {
      await waitFor('awaiting-approval');
      await handle.signal(approveSignal, { by: 'bob' });
      const result = await handle.result();
      expect(result.state).toBe('committed');
      expect(result.decision).toMatchObject({ approved: true, by: 'bob', via: 'signal' });
      expect(fake.running).toBe('b');
      expect(fake.argsOf('trialBoot')).toHaveLength(1);

      // After the end a late signal is refused by the server (the execution is closed).
      await expect(handle.signal(approveSignal, { by: 'late' })).rejects.toThrow();
    });
  });

  test('an approve update before the workflow awaits approval is refused', async () => {
    await withUpgrade({ script: { installDelayMs: 1500 } }, async ({ handle, waitFor }) => {
      await eventually(async () => (await handle.query(statusQuery)).phase === 'installRelease');
      const err = await handle.executeUpdate(approveUpdate, { args: [{ by: 'eager' }] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String((err as WorkflowUpdateFailedError).cause?.message)).toMatch(/not awaiting approval/);
      // An early approve *signal* is ignored (noted), so the gate still holds.
      await handle.signal(approveSignal, { by: 'eager-signal' });
      const waiting = await waitFor('awaiting-approval');
      expect(waiting.notices.join('\n')).toMatch(/approve signal from eager-signal ignored/);
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'carol', reason: 'not today' }] });
      expect((await handle.result()).state).toBe('rejected');
    });
  });

  test('approval timeout: boot entry removed, nothing rebooted, state rejected', async () => {
    await withUpgrade({ profile: { timings: { approvalTimeout: '1s', comebackDeadline: '3s', pollInterval: '100ms', healthTimeout: '5s' } } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rejected');
      expect(result.reason).toMatch(/approval timed out: nobody approved within 1\.0s/);
      expect(result.decision).toMatchObject({ approved: false, via: 'timeout' });
      expect(result.timeline.find((p) => p.phase === 'approval')?.outcome).toBe('timed-out');
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.entry).toBeUndefined();
      expect(fake.count('trialBoot') + fake.count('rebootToSlot') + fake.count('powerReset')).toBe(0);
      expect(fake.running).toBe('a');
      expect(fake.bootId).toBe('boot-1');
      expect(phases(result).at(-1)).toBe('compensate.removeBootEntry');
    });
  });

  test('rejection via update records who and why; compensations run', async () => {
    await withUpgrade({}, async ({ fake, handle, waitFor }) => {
      await waitFor('awaiting-approval');
      const ack = await handle.executeUpdate(rejectUpdate, { args: [{ by: 'dave', reason: 'freeze until Monday' }] });
      expect(ack).toMatchObject({ accepted: true, approved: false, by: 'dave' });
      const result = await handle.result();
      expect(result.state).toBe('rejected');
      expect(result.reason).toBe('rejected by dave: freeze until Monday');
      expect(result.decision).toMatchObject({ approved: false, by: 'dave', reason: 'freeze until Monday', via: 'update' });
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.count('trialBoot')).toBe(0);
    });
  });

  test('install fails: nothing to undo yet, execution fails with the cause (UpgradeFailed carrying the status)', async () => {
    await withUpgrade({ script: { fail: { installRelease: 'debootstrap exited with code 1: E: Failed getting release file' } } }, async ({ fake, handle, status }) => {
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const final = finalStatusFrom(err)!;
      expect(final.state).toBe('failed');
      expect(final.reason).toMatch(/^installRelease failed: debootstrap exited with code 1: E: Failed getting release file \[CommandFailed\]$/);
      expect(((err as WorkflowFailedError).cause as { type?: string }).type).toBe(UPGRADE_FAILED);
      expect(fake.count('installRelease')).toBe(1); // the fake fails it non-retryably
      expect(fake.count('addBootEntry')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(0);
      expect((await status()).state).toBe('failed');
    });
  });

  test('a failure after the boot entry exists (final sync) runs the compensation, then fails', async () => {
    await withUpgrade({ script: { fail: { finalSync: 'rsync: connection unexpectedly closed' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const err = await handle.result().catch((e: unknown) => e);
      const final = finalStatusFrom(err)!;
      expect(final.state).toBe('failed');
      expect(final.reason).toMatch(/^finalSync failed: rsync: connection unexpectedly closed/);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.entry).toBeUndefined();
      expect(fake.count('trialBoot')).toBe(0);
      expect(final.timeline.find((p) => p.phase === 'approval')?.outcome).toBe('skipped');
    });
  });

  test('addBootEntry changes GRUB, then fails for good: the compensation registered before it restores GRUB', async () => {
    await withUpgrade({ script: { failAfter: { addBootEntry: 'update-grub: error: out of memory' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const final = finalStatusFrom(await handle.result().catch((e: unknown) => e))!;
      expect(final.state).toBe('failed');
      expect(final.reason).toMatch(/^addBootEntry failed: update-grub: error: out of memory/);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.entry).toBeUndefined();
      expect(fake.count('trialBoot')).toBe(0);
    });
  });

  test('host never comes back: power reset lands it on slot a, boot entry removed, rolled back', async () => {
    await withUpgrade({ script: { hangOnBootInto: ['b'] }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toBe('host did not come back on slot b within 3.0s');
      expect(fake.count('powerReset')).toBe(1);
      expect(fake.count('rebootToSlot')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.count('commitSlot')).toBe(0);
      expect(fake.running).toBe('a');
      expect(fake.defaultSlot).toBe('a');
      expect(result.health?.ok).toBe(true);
      expect(phases(result)).toEqual([
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
      expect(result.timeline.find((p) => p.phase === 'awaitComeback')?.outcome).toBe('timed-out');
    });
  });

  test('no power driver and never comes back: awaiting-operator until hostRecovered, then rolled back', async () => {
    await withUpgrade(
      { script: { hangOnBootInto: ['b'] }, profile: { power: { driver: 'none' } }, input: { autoApprove: true } },
      async ({ fake, handle, waitFor }) => {
        const waiting = await waitFor('awaiting-operator');
        expect(waiting.waitingFor).toMatch(/does not answer/);
        expect(waiting.waitingFor).toMatch(/no usable power driver/);
        expect(waiting.waitingFor).toMatch(/slot a \(\/dev\/vda2\)/);
        expect(waiting.waitingFor).toContain(`--workflow-id '${hostWorkflowId(waiting.host)}' --name hostRecovered`);
        expect(fake.count('powerReset')).toBe(0);

        // It stays there (durably) until a human acts.
        await new Promise((r) => setTimeout(r, 1000));
        expect((await handle.query(statusQuery)).state).toBe('awaiting-operator');

        fake.operatorReset(); // the operator power-cycles the box from the KVM
        await handle.signal(hostRecoveredSignal, { by: 'erin', note: 'reset from the iDRAC console' });
        const result = await handle.result();
        expect(result.state).toBe('rolled-back');
        expect(result.reason).toBe('host did not come back on slot b within 3.0s');
        expect(result.timeline.find((p) => p.phase === 'rollback.awaitOperator')?.detail).toBe(
          'erin says the host was recovered: reset from the iDRAC console',
        );
        expect(fake.running).toBe('a');
        expect(fake.count('removeBootEntry')).toBe(1);
        expect(fake.count('powerReset')).toBe(0);
      },
    );
  });

  test('power resets do not help either: reset once more, then wait for the operator', async () => {
    await withUpgrade(
      { script: { hangOnBootInto: ['a', 'b'] }, profile: { timings: { approvalTimeout: '5s', comebackDeadline: '1500ms', pollInterval: '100ms', healthTimeout: '5s' } }, input: { autoApprove: true } },
      async ({ fake, handle, waitFor }) => {
        const waiting = await waitFor('awaiting-operator');
        expect(fake.count('powerReset')).toBe(2);
        expect(waiting.waitingFor).toMatch(/resets through qmp did not bring it back/);
        fake.script.hangOnBootInto = [];
        fake.operatorReset();
        await handle.signal(hostRecoveredSignal, { by: 'erin' });
        const result = await handle.result();
        expect(result.state).toBe('rolled-back');
        expect(result.reason).toBe('host did not come back on slot b within 1.5s');
        expect(fake.count('powerReset')).toBe(2);
        expect(fake.running).toBe('a');
        expect(fake.count('removeBootEntry')).toBe(1);
      },
    );
  });

  test('health fails on slot b: rollback over SSH (rebootToSlot a), no power reset', async () => {
    await withUpgrade({ script: { healthFailsOn: ['b'] }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toMatch(/^health checks failed on slot b: 1 of 1 checks failed: nginx.service: failed/);
      expect(fake.argsOf('rebootToSlot')).toHaveLength(1);
      expect(fake.argsOf('rebootToSlot')[0]?.slice(1)).toEqual(['a', false]);
      expect(fake.count('powerReset')).toBe(0);
      expect(fake.count('commitSlot')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.running).toBe('a');
      expect(result.health?.ok).toBe(true); // the health of slot a after the rollback
    });
  });

  test('a reset during the health checks (back on slot a): rolled back, never committed', async () => {
    await withUpgrade({ script: { resetDuringHealthOn: ['b'] }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toMatch(/^checkHealth failed: the host booted again during its health checks: boot boot-\d+ was checked/);
      // Asked about the boot that answered the comeback, once: retrying would check another boot.
      // After the rollback, the health of slot a is checked without a pin.
      const [pinned, afterRollback] = fake.argsOf('checkHealth');
      expect(pinned).toEqual([expect.stringMatching(/^boot-\d+$/)]);
      expect(afterRollback).toEqual([]);
      expect(result.reason).toContain(`boot ${pinned![0] as string} was checked, boot `);
      expect(fake.bootId).not.toBe(pinned![0]);
      expect(fake.count('commitSlot')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.running).toBe('a');
      expect(fake.effects).toContain('watchdog reset → a');
    });
  });

  test('trial boot does not take (host comes back on slot a): rolled back without another reboot', async () => {
    await withUpgrade({ script: { trialBootFallsBack: true }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toMatch(/came back on slot a .*not on slot b/);
      expect(fake.count('rebootToSlot') + fake.count('powerReset')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
    });
  });

  test('the comeback poll fails for good (e.g. host key changed): rolled back, the reason names the cause', async () => {
    await withUpgrade({ script: { failFirst: { awaitComeback: 'host key of 192.0.2.10 changed' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toBe('waiting for the host to come back on slot b failed: host key of 192.0.2.10 changed [CommandFailed]');
      expect(fake.argsOf('rebootToSlot')[0]?.slice(1)).toEqual(['a', false]); // it answered on b: back over SSH
      expect(fake.running).toBe('a');
      expect(fake.count('removeBootEntry')).toBe(1);
    });
  });

  test('the trial boot itself fails: the host is found on slot a, rolled back without a reboot', async () => {
    await withUpgrade({ script: { fail: { trialBoot: 'grub-reboot: error: invalid environment block' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toBe('trialBoot failed: grub-reboot: error: invalid environment block [CommandFailed]');
      expect(phases(result).slice(7)).toEqual(['trialBoot', 'rollback.probe', 'rollback.checkHealth', 'compensate.removeBootEntry']);
      expect(fake.count('rebootToSlot') + fake.count('powerReset')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.running).toBe('a');
    });
  });

  test('the commit fails on slot b: rolled back over SSH to slot a, which is the default again', async () => {
    await withUpgrade({ script: { fail: { commitSlot: 'grub-install: error: disk not found' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toBe('commitSlot failed: grub-install: error: disk not found [CommandFailed]');
      expect(fake.argsOf('rebootToSlot').map((a) => a.slice(1))).toEqual([['a', false]]);
      expect(fake.count('powerReset')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect(fake.running).toBe('a');
      expect(fake.defaultSlot).toBe('a');
    });
  });

  test('cancel while awaiting the comeback: the host is brought back first (power reset), then compensations, execution cancelled', async () => {
    await withUpgrade(
      { script: { hangOnBootInto: ['b'] }, profile: { timings: { approvalTimeout: '5s', comebackDeadline: '30s', pollInterval: '100ms', healthTimeout: '5s' } }, input: { autoApprove: true } },
      async ({ fake, handle, status }) => {
        await eventually(async () => (await status()).phase === 'awaitComeback');
        await handle.cancel();
        await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
        const final = await status();
        expect(final.state).toBe('cancelled');
        expect(final.reason).toBe('cancelled during awaitComeback');
        expect(phases(final).slice(8)).toEqual([
          'awaitComeback',
          'rollback.probe',
          'rollback.powerReset',
          'rollback.awaitComeback',
          'compensate.removeBootEntry',
        ]);
        expect(final.timeline.find((p) => p.phase === 'awaitComeback')?.outcome).toBe('cancelled');
        expect(fake.count('powerReset')).toBe(1);
        expect(fake.running).toBe('a');
        expect(fake.count('removeBootEntry')).toBe(1);
      },
    );
  });

  test('cancel after the commit (while measuring downtime): the upgrade stays committed, nothing is rebooted', async () => {
    await withUpgrade({ script: { measureDelayMs: 5_000 }, input: { autoApprove: true } }, async ({ fake, handle, status }) => {
      await eventually(async () => (await status()).phase === 'measureHostDowntime');
      await handle.cancel();
      const result = await handle.result();
      expect(result.state).toBe('committed');
      expect(result.notices.join('\n')).toMatch(/cancel requested after slot b was committed: it stays committed/);
      expect(phases(result)).not.toContain('rollback.rebootToSlot');
      expect(fake.count('rebootToSlot')).toBe(0);
      expect(fake.count('powerReset')).toBe(0);
      expect(fake.count('removeBootEntry')).toBe(0);
      expect(fake.running).toBe('b');
      expect(fake.defaultSlot).toBe('b');
    });
  });

  test('rebooting back over SSH fails: a power reset brings the host back instead', async () => {
    await withUpgrade({ script: { healthFailsOn: ['b'], fail: { rebootToSlot: 'ssh: broken pipe' } }, input: { autoApprove: true } }, async ({ fake, handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('rolled-back');
      expect(result.reason).toMatch(/^health checks failed on slot b/);
      expect(result.notices.join('\n')).toMatch(/rebooting into slot a over SSH failed: ssh: broken pipe/);
      expect(fake.count('rebootToSlot')).toBe(1);
      expect(fake.count('powerReset')).toBe(1);
      expect(fake.running).toBe('a');
      expect(fake.count('removeBootEntry')).toBe(1);
    });
  });

  test('the host answers on slot b but cannot be rebooted, and has no power driver: the operator is asked', async () => {
    await withUpgrade(
      { script: { healthFailsOn: ['b'], fail: { rebootToSlot: 'ssh: broken pipe' } }, profile: { power: { driver: 'none' } }, input: { autoApprove: true } },
      async ({ fake, handle, waitFor }) => {
        const waiting = await waitFor('awaiting-operator');
        expect(waiting.waitingFor).toMatch(/answers on slot b but could not be rebooted into slot a automatically/);
        expect(fake.count('powerReset')).toBe(0);
        fake.operatorReset(); // boots GRUB's default, slot a
        await handle.signal(hostRecoveredSignal, { by: 'erin' });
        const result = await handle.result();
        expect(result.state).toBe('rolled-back');
        expect(fake.running).toBe('a');
        expect(fake.count('rebootToSlot')).toBe(1);
      },
    );
  });

  test('measureHostDowntime failing does not fail the upgrade', async () => {
    await withUpgrade({ script: { measureFails: true }, input: { autoApprove: true } }, async ({ handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('committed');
      expect(result.downtime?.downtimeMs).toBeGreaterThan(0);
      expect(result.downtime?.hostSide).toBeUndefined();
      expect(result.notices.join('\n')).toMatch(/measureHostDowntime failed \(best effort, ignored\)/);
    });
  });

  test('cancel while awaiting approval: compensation runs, execution cancelled', async () => {
    await withUpgrade({}, async ({ fake, handle, waitFor, status }) => {
      await waitFor('awaiting-approval');
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(fake.count('removeBootEntry')).toBe(1);
      expect((await status()).state).toBe('cancelled');
    });
  });

  test('a second upgrade for the same host while one runs is refused, naming the running one', async () => {
    await withUpgrade({}, async ({ profile, handle, waitFor }) => {
      await waitFor('awaiting-approval');
      const err = await env.client.workflow
        .start(upgradeHost, { ...startOptions(profile, 'elsewhere'), args: [{ profile }] })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
      expect((err as WorkflowExecutionAlreadyStartedError).workflowId).toBe(hostWorkflowId(profile.name));
      expect((err as WorkflowExecutionAlreadyStartedError).workflowType).toBe('upgradeHost');
      // The running one is untouched.
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'test' }] });
      expect((await handle.result()).state).toBe('rejected');
      // After it ended, the same id may be used again (reuse policy ALLOW_DUPLICATE).
      const again = await env.client.workflow.start(upgradeHost, {
        ...startOptions(profile, 'elsewhere'),
        args: [{ profile }],
      });
      expect(again.workflowId).toBe(hostWorkflowId(profile.name));
      await again.terminate('test cleanup: no worker on this queue');
    });
  });
});
