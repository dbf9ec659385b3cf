// fleetCampaign on a real Temporal dev server, each host a scripted fake behind one worker.
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  approveWaveUpdate,
  campaignStartOptions,
  campaignStatusQuery,
  pauseSignal,
  resumeSignal,
  retryFailedUpdate,
  type CampaignInput,
  type CampaignStatus,
  type HostRecord,
} from '../../lib/campaign-api.js';
import { hostWorkflowId, type Profile } from '../../lib/profile.js';
import { hostRecoveredSignal, rejectUpdate, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { findCampaign, scheduleCampaign } from '../../client/campaign.js';
import { fleetCampaign, upgradeHost } from '../../workflows/index.js';
import { FakeFleet } from '../helpers/fake-fleet.js';
import { eventually, fakeWorker, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

interface Ctx {
  handle: WorkflowHandleWithFirstExecutionRunId<typeof fleetCampaign>;
  taskQueue: string;
  status(): Promise<CampaignStatus>;
  waitFor(pred: (s: CampaignStatus) => boolean, timeoutMs?: number): Promise<CampaignStatus>;
}

/** Runs a campaign over `fleet` with a worker on a unique task queue; options override the defaults. */
async function withCampaign(fleet: FakeFleet, opts: Partial<CampaignInput>, body: (c: Ctx) => Promise<void>, before?: (taskQueue: string) => Promise<void>) {
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fleet, taskQueue);
  try {
    await worker.runUntil(async () => {
      await before?.(taskQueue);
      const name = uniqueName('campaign');
      const input: CampaignInput = {
        name,
        profiles: fleet.profiles,
        waves: ['100%'],
        failureBudget: 0,
        approveEachWave: false,
        retryWithinMs: 1000,
        requestedBy: 'test',
        ...opts,
      };
      const handle = await env.client.workflow.start(fleetCampaign, { ...campaignStartOptions(name, taskQueue), args: [input] });
      const status = () => handle.query(campaignStatusQuery);
      const waitFor = (pred: (s: CampaignStatus) => boolean, timeoutMs = 30_000) =>
        eventually(async () => {
          const s = await status();
          return pred(s) ? s : undefined;
        }, timeoutMs);
      await body({ handle, taskQueue, status, waitFor });
    });
  } finally {
    fleet.dispose();
  }
}

const hostOf = (s: CampaignStatus, p: Profile): HostRecord => s.hosts.find((h) => h.name === p.name)!;
const states = (s: CampaignStatus) => Object.fromEntries(s.hosts.map((h) => [h.name, h.state]));

describe('fleetCampaign', () => {
  test('waves run one after another with the sizes of [1, "40%"] (1, 2, 2 of 5 hosts)', async () => {
    const fleet = new FakeFleet();
    const hosts = fleet.addMany(5);
    await withCampaign(fleet, { waves: [1, '40%'] }, async ({ handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(result.waves.map((w) => w.hosts)).toEqual([[hosts[0]!.name], [hosts[1]!.name, hosts[2]!.name], [hosts[3]!.name, hosts[4]!.name]]);
      expect(result.hosts.every((h) => h.state === 'committed' && h.attempts === 1)).toBe(true);
      expect(result.failures).toEqual({ count: 0, budget: 0, hosts: [] });
      // Every host of a wave committed before any host of the next one was touched.
      const byWave = result.waves.map((w) => w.hosts.map((n) => fleet.host(n)));
      for (let i = 1; i < byWave.length; i++) {
        const lastCommit = Math.max(...byWave[i - 1]!.map((f) => f.calls.find((c) => c.name === 'commitSlot')!.at));
        const firstInspect = Math.min(...byWave[i]!.map((f) => f.calls[0]!.at));
        expect(firstInspect).toBeGreaterThan(lastCommit);
      }
      for (const p of hosts) expect(fleet.host(p).running).toBe('b');
    });
  });

  test('over the failure budget it halts: unreachable and awaiting-operator hosts count, later waves never start', async () => {
    const fleet = new FakeFleet();
    const unreachable = fleet.add().profile;
    fleet.host(unreachable).up = false;
    const { profile: stuck, fake: stuckFake } = fleet.add({ hangOnBootInto: ['b'] }, { power: { driver: 'none' } });
    const fine = fleet.add().profile;
    const later = fleet.addMany(2);
    await withCampaign(fleet, { waves: [3, 2], failureBudget: 1, retryWithinMs: 1500 }, async ({ handle, waitFor }) => {
      const halted = await waitFor((s) => s.state === 'halted');
      expect(states(halted)).toEqual({
        [unreachable.name]: 'unreachable',
        [stuck.name]: 'awaiting-operator',
        [fine.name]: 'committed',
        [later[0]!.name]: 'pending',
        [later[1]!.name]: 'pending',
      });
      expect(halted.failures).toEqual({ count: 2, budget: 1, hosts: [unreachable.name, stuck.name] });
      expect(halted.reason).toBe(`failure budget exceeded after wave 1: 2 failed (budget 1): ${unreachable.name} (unreachable), ${stuck.name} (awaiting-operator)`);
      expect(hostOf(halted, unreachable).reason).toMatch(/^inspect failed: ssh: connect .*\[SshConnectError\]$/);
      expect(hostOf(halted, stuck).reason).toMatch(/does not answer/);
      for (const p of later) expect(fleet.host(p).calls).toHaveLength(0);

      // The operator resets the stuck host; its rollback ends and the campaign records that.
      stuckFake.operatorReset();
      await env.client.workflow.getHandle(hostWorkflowId(stuck.name)).signal(hostRecoveredSignal, { by: 'erin' });
      const result = await handle.result(); // nobody retries within retryWithin: it ends halted
      expect(result.state).toBe('halted');
      expect(hostOf(result, stuck).state).toBe('rolled-back');
      expect(result.failures.count).toBe(2);
      for (const p of later) expect(fleet.host(p).calls).toHaveLength(0);

      // Both histories replay: the campaign's, and the stuck host's with its signal to the campaign.
      const stuckHistory = await env.client.workflow.getHandle(hostWorkflowId(stuck.name)).fetchHistory();
      expect(stuckHistory.events?.filter((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes).length).toBe(2); // awaiting-operator, running
      await Worker.runReplayHistory({ workflowBundle: env.bundle }, stuckHistory, stuck.name);
      await Worker.runReplayHistory({ workflowBundle: env.bundle }, await handle.fetchHistory(), handle.workflowId);
    });
  });

  test('pause lets the running wave finish and starts no new one until resume', async () => {
    const fleet = new FakeFleet();
    const [first, second] = [fleet.add({ installDelayMs: 1500 }).profile, fleet.add().profile];
    await withCampaign(fleet, { waves: [1] }, async ({ handle, waitFor, status }) => {
      await waitFor((s) => hostOf(s, first).state === 'running');
      await handle.signal(pauseSignal, { by: 'alice', reason: 'lunch' });
      const paused = await waitFor((s) => s.state === 'paused');
      expect(hostOf(paused, first).state).toBe('committed');
      expect(paused.currentWave).toBe(2);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await status()).state).toBe('paused');
      expect(fleet.host(second).calls).toHaveLength(0);

      const resumedAt = Date.now();
      await handle.signal(resumeSignal, { by: 'alice' });
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(hostOf(result, second).state).toBe('committed');
      expect(fleet.firstCall(second, 'inspectHost')!).toBeGreaterThanOrEqual(resumedAt);
      expect(result.notices.join('\n')).toMatch(/paused by alice: lunch[\s\S]*resumed by alice/);
    });
  });

  test('approveEachWave: the first wave starts at once, the next waits for its approval', async () => {
    const fleet = new FakeFleet();
    const [first, second] = fleet.addMany(2);
    await withCampaign(fleet, { waves: [1], approveEachWave: true }, async ({ handle, waitFor }) => {
      const waiting = await waitFor((s) => s.state === 'awaiting-approval');
      expect(waiting.currentWave).toBe(2);
      expect(waiting.waitingFor).toContain(`--wave 2`);
      expect(hostOf(waiting, first!).state).toBe('committed');
      expect(fleet.host(second!).calls).toHaveLength(0);

      const wrong = await handle.executeUpdate(approveWaveUpdate, { args: [{ by: 'bob', wave: 3 }] }).catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String((wrong as WorkflowUpdateFailedError).cause?.message)).toMatch(/wave 2 awaits approval, not wave 3/);
      expect(fleet.host(second!).calls).toHaveLength(0);

      const ack = await handle.executeUpdate(approveWaveUpdate, { args: [{ by: 'bob', wave: 2, reason: 'canary fine' }] });
      expect(ack).toEqual({ wave: 2, hosts: [second!.name] });
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(result.waves.map((w) => w.approvedBy)).toEqual([undefined, 'bob']);
      expect(hostOf(result, second!).state).toBe('committed');
    });
  });

  test('retry-failed runs only the failed hosts again, as a new round', async () => {
    const fleet = new FakeFleet();
    const [a, flaky, c] = [fleet.add().profile, fleet.add({ healthFailsOn: ['b'] }).profile, fleet.add().profile];
    await withCampaign(fleet, { failureBudget: 1, retryWithinMs: 60_000 }, async ({ handle, waitFor }) => {
      const done = await waitFor((s) => s.state === 'done');
      expect(states(done)).toEqual({ [a.name]: 'committed', [flaky.name]: 'rolled-back', [c.name]: 'committed' });
      expect(done.waitingFor).toMatch(/retry-failed/);

      fleet.host(flaky).script.healthFailsOn = []; // the operator fixed it
      const ack = await handle.executeUpdate(retryFailedUpdate, { args: [{ by: 'carol' }] });
      expect(ack).toEqual({ hosts: [flaky.name] });
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(result.hosts.every((h) => h.state === 'committed')).toBe(true);
      expect(result.waves.map((w) => [w.round, w.hosts])).toEqual([
        [1, [a.name, flaky.name, c.name]],
        [2, [flaky.name]],
      ]);
      expect(hostOf(result, flaky).attempts).toBe(2);
      expect(fleet.host(a).count('inspectHost')).toBe(1);
      expect(fleet.host(c).count('inspectHost')).toBe(1);
      expect(fleet.host(flaky).count('inspectHost')).toBe(2);
      expect(fleet.host(flaky).running).toBe('b');
    });
  });

  test('a host already being upgraded by another workflow is reported busy, not upgraded twice', async () => {
    const fleet = new FakeFleet();
    const [busy, free] = fleet.addMany(2);
    let other: WorkflowHandle<typeof upgradeHost> | undefined;
    await withCampaign(
      fleet,
      { failureBudget: 1 },
      async ({ handle }) => {
        const result = await handle.result();
        expect(states(result)).toEqual({ [busy!.name]: 'busy', [free!.name]: 'committed' });
        expect(hostOf(result, busy!).reason).toContain(`workflow ${hostWorkflowId(busy!.name)}`);
        expect(fleet.host(busy!).count('inspectHost')).toBe(1); // the other workflow's only
        expect(fleet.host(busy!).count('trialBoot')).toBe(0);
        expect((await other!.query(statusQuery)).state).toBe('awaiting-approval'); // untouched
        await other!.executeUpdate(rejectUpdate, { args: [{ by: 'test' }] });
      },
      async (taskQueue) => {
        other = await env.client.workflow.start(upgradeHost, { ...startOptions(busy!, taskQueue), args: [{ profile: busy!, requestedBy: 'someone else' }] });
        await eventually(async () => (await other!.query(statusQuery)).state === 'awaiting-approval');
      },
    );
  });

  test('waits for the maintenance window with a durable timer (Asia/Kolkata, seconds resolution)', async () => {
    const fleet = new FakeFleet();
    const [host] = fleet.addMany(1);
    const timezone = 'Asia/Kolkata';
    const opensAt = Math.ceil(Date.now() / 1000) * 1000 + 4000;
    const clock = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const window = { days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const, start: clock.format(opensAt), end: clock.format(opensAt + 3_600_000), timezone };
    await withCampaign(fleet, { window: { ...window, days: [...window.days] } }, async ({ handle, waitFor }) => {
      const waiting = await waitFor((s) => s.state === 'waiting-for-window');
      expect(waiting.window).toEqual({ open: false, opensAt: new Date(opensAt).toISOString(), closesAt: new Date(opensAt + 3_600_000).toISOString() });
      expect(fleet.host(host!).calls).toHaveLength(0);
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(result.window?.open).toBe(true);
      expect(fleet.firstCall(host!, 'inspectHost')!).toBeGreaterThanOrEqual(opensAt);
      await Worker.runReplayHistory({ workflowBundle: env.bundle }, await handle.fetchHistory(), handle.workflowId);
    });
  });

  test('no host starts past the window\'s end: the next wave waits for the next window, the running wave finishes', async () => {
    const fleet = new FakeFleet();
    const [first, second] = [fleet.add({ installDelayMs: 30_000 }).profile, fleet.add().profile];
    // Open now, closing in about 20 s (UTC, seconds resolution: room for a slow worker start on a
    // loaded machine); the first wave runs well past the end.
    const opensAt = Math.floor(Date.now() / 1000) * 1000 - 1000;
    const closesAt = opensAt + 21_000;
    const clock = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const window = { days: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as ('sun' | 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat')[], start: clock.format(opensAt), end: clock.format(closesAt), timezone: 'UTC' };
    await withCampaign(fleet, { waves: [1], window }, async ({ handle, waitFor }) => {
      const waiting = await waitFor((s) => s.state === 'waiting-for-window' && s.currentWave === 2, 60_000);
      // The running host finished after the window closed; the next one was left for tomorrow's window.
      expect(waiting.hosts.map((h) => h.state)).toEqual(['committed', 'pending']);
      // Started (workflow time) inside the window, committed after it closed.
      expect(Date.parse(waiting.hosts[0]!.startedAt!)).toBeLessThan(closesAt);
      expect(fleet.firstCall(first!, 'commitSlot')!).toBeGreaterThan(closesAt);
      expect(waiting.window).toEqual({ open: false, opensAt: new Date(opensAt + 86_400_000).toISOString(), closesAt: new Date(closesAt + 86_400_000).toISOString() });
      expect(fleet.host(second!).calls).toHaveLength(0);
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect(fleet.host(second!).calls).toHaveLength(0);
      await Worker.runReplayHistory({ workflowBundle: env.bundle }, await handle.fetchHistory(), handle.workflowId);
    });
  });

  test('skipped hosts are reported as skipped and never started; they count neither as failed nor in the waves', async () => {
    const fleet = new FakeFleet();
    const [host] = fleet.addMany(1);
    await withCampaign(fleet, { skipped: ['web-retired'], failureBudget: 0 }, async ({ handle }) => {
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(states(result)).toEqual({ [host!.name]: 'committed', 'web-retired': 'skipped' });
      expect(result.hosts.find((h) => h.name === 'web-retired')).toMatchObject({ attempts: 0, workflowId: hostWorkflowId('web-retired') });
      expect(result.waves.flatMap((w) => w.hosts)).toEqual([host!.name]);
      expect(result.failures).toEqual({ count: 0, budget: 0, hosts: [] });
      await expect(env.client.workflow.getHandle(hostWorkflowId('web-retired')).describe()).rejects.toThrow();
    });
  });

  test('cancel cancels the running children; their compensations run', async () => {
    const fleet = new FakeFleet();
    const hosts = fleet.addMany(2, { installDelayMs: 10_000 });
    await withCampaign(fleet, {}, async ({ handle, status }) => {
      await eventually(async () => hosts.every((p) => fleet.host(p).count('installRelease') > 0));
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      const s = await status();
      expect(s.state).toBe('cancelled');
      expect(s.hosts.map((h) => h.state)).toEqual(['cancelled', 'cancelled']);
      for (const p of hosts) {
        const d = await env.client.workflow.getHandle(hostWorkflowId(p.name)).describe();
        expect(d.status.name).toBe('CANCELLED');
        expect(fleet.host(p).count('addBootEntry')).toBe(0);
      }
    });
  });

  test('continues as new between waves and keeps its state', async () => {
    const fleet = new FakeFleet();
    const hosts = fleet.addMany(3);
    await withCampaign(fleet, { waves: [1], historyLimit: 1 }, async ({ handle }) => {
      const result = await handle.result();
      expect(result.continuedAsNew).toBe(2); // after waves 1 and 2, not after the last
      expect(result.state).toBe('done');
      expect(result.hosts.map((h) => h.state)).toEqual(['committed', 'committed', 'committed']);
      expect(result.waves.map((w) => w.state)).toEqual(['done', 'done', 'done']);
      for (const p of hosts) expect(fleet.host(p).count('inspectHost')).toBe(1);
      expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
    });
  });

  test('campaign schedule: a Temporal Schedule that starts the campaign; its runs are found by name', async () => {
    const fleet = new FakeFleet();
    const hosts = fleet.addMany(2);
    const taskQueue = uniqueName('tq');
    const worker = await fakeWorker(env, fleet, taskQueue);
    const name = uniqueName('scheduled');
    const saved = process.env.AB_UPGRADE_TASK_QUEUE;
    process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
    try {
      await worker.runUntil(async () => {
        const spec = { name, profiles: fleet.profiles, waves: [1], failureBudget: 0, approveEachWave: false, retryWithinMs: 1000 };
        const schedule = await scheduleCampaign(env.client, spec, { cron: '0 3 * * sat', timezone: 'Europe/Berlin' }, 'tester');
        try {
          const d = await schedule.describe();
          expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'fleetCampaign', workflowId: campaignStartOptions(name).workflowId, taskQueue });
          expect((d.action as { args: CampaignInput[] }).args[0]!.profiles.map((p) => p.name)).toEqual(hosts.map((p) => p.name));
          expect(d.spec.timezone).toBe('Europe/Berlin');
          expect(d.policies.overlap).toBe('SKIP');
          // A second schedule of the same campaign is refused.
          await expect(scheduleCampaign(env.client, spec, { cron: '0 4 * * sun' })).rejects.toThrow(/already scheduled/);

          await schedule.trigger(); // as if the cron fired now
          const handle = await eventually(() => findCampaign(env.client, name));
          expect(handle.workflowId).toMatch(new RegExp(`^ab-upgrade-campaign/${name}-\\d{4}-`));
          const result = await handle.result();
          expect(result.state).toBe('done');
          expect(result.requestedBy).toBe('schedule (created by tester)');
          expect(result.hosts.map((h) => h.state)).toEqual(['committed', 'committed']);
        } finally {
          await schedule.delete();
        }
      });
    } finally {
      if (saved === undefined) delete process.env.AB_UPGRADE_TASK_QUEUE;
      else process.env.AB_UPGRADE_TASK_QUEUE = saved;
      fleet.dispose();
    }
  });
});
