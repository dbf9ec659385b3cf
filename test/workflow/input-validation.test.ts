// The workflows validate their input themselves: whoever can start a workflow on the task queue
// chooses the profile, so a hostile one must end the run, naming the field, before any activity
// is scheduled (and a campaign before any child starts).
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { campaignStartOptions, type CampaignInput } from '../../lib/campaign-api.js';
import { FailureTypes } from '../../lib/contract.js';
import type { Profile } from '../../lib/profile.js';
import { UPGRADE_FAILED, finalStatusFrom, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { fleetCampaign, rollbackHost, upgradeHost } from '../../workflows/index.js';
import { FakeFleet } from '../helpers/fake-fleet.js';
import { fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

/** A fake host's parsed profile, then edited the way a caller bypassing the CLI could. */
function hostile(edit: (p: Record<string, unknown>) => void): Profile {
  const p = structuredClone(fakeProfile()) as unknown as Record<string, unknown>;
  edit(p);
  return p as unknown as Profile;
}

async function scheduledActivities(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length;
}

describe('upgradeHost and rollbackHost validate the profile before any activity', () => {
  test('upgradeHost: kernelArgs with a quote, a health.unit typo and a relative Redfish password file', async () => {
    const fake = newFake();
    const profile = hostile((p) => {
      p.kernelArgs = "quiet' init=/bin/sh";
      p.health = { ...(p.health as object), unit: ['evil.service'] };
      p.power = { driver: 'redfish', url: 'https://bmc.example.net', user: 'root', passwordFile: 'id_ed25519', systemId: '1', insecureTls: false, allowHttp: false };
    });
    const taskQueue = uniqueName('tq');
    const worker = await fakeWorker(env, fake, taskQueue);
    try {
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, requestedBy: 'test' }] });
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause as { type?: string; message: string; cause?: { type?: string } };
        expect(cause.type).toBe(UPGRADE_FAILED);
        expect(cause.cause?.type).toBe(FailureTypes.InvalidInput);
        expect(cause.message).toMatch(/^starting failed: invalid host profile: /);
        expect(cause.message).toContain('kernelArgs: must be plain kernel parameters');
        expect(cause.message).toContain('health: unrecognized key "unit"');
        expect(cause.message).toContain('power.passwordFile: must be an absolute path');
        const final = finalStatusFrom(err)!;
        expect(final.state).toBe('failed');
        expect(final.timeline).toEqual([]);
        expect((await handle.query(statusQuery)).state).toBe('failed');
        expect(fake.calls).toEqual([]);
        expect(await scheduledActivities(handle)).toBe(0);
      });
    } finally {
      fake.dispose();
    }
  });

  test('rollbackHost (carrying back): /boot among the carried files and a 50 ms poll interval', async () => {
    const fake = newFake();
    const profile = hostile((p) => {
      p.carry = { defaults: true, files: ['/etc/app', '/boot'], exclude: [] };
      p.timings = { ...(p.timings as object), pollInterval: 50 };
    });
    const taskQueue = uniqueName('tq');
    const worker = await fakeWorker(env, fake, taskQueue);
    try {
      await worker.runUntil(async () => {
        const handle = await env.client.workflow.start(rollbackHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, carryBack: true }] });
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const message = ((err as WorkflowFailedError).cause as Error).message;
        expect(message).toContain('timings.pollInterval: 50 ms must be at least 100ms');
        expect(message).toContain('carry.files.1: must not be /boot or under it');
        expect(fake.calls).toEqual([]);
        expect(await scheduledActivities(handle)).toBe(0);
      });
    } finally {
      fake.dispose();
    }
  });
});

describe('fleetCampaign validates every host profile before any child starts', () => {
  test('one bad host among good ones: the campaign fails naming it and the field; no host is touched', async () => {
    const fleet = new FakeFleet();
    const good = fleet.add().profile;
    const bad = fleet.add().profile;
    (bad as unknown as Record<string, unknown>).data = { device: '/dev/vda4', mountPoint: '/srv/my data' };
    const taskQueue = uniqueName('tq');
    const worker = await fakeWorker(env, fleet, taskQueue);
    try {
      await worker.runUntil(async () => {
        const name = uniqueName('campaign');
        const input: CampaignInput = { name, profiles: [good, bad], waves: ['100%'], failureBudget: 0, approveEachWave: false, retryWithinMs: 1000 };
        const handle = await env.client.workflow.start(fleetCampaign, { ...campaignStartOptions(name, taskQueue), args: [input] });
        const err = await handle.result().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(WorkflowFailedError);
        const cause = (err as WorkflowFailedError).cause as { type?: string; message: string };
        expect(cause.type).toBe(FailureTypes.InvalidInput);
        expect(cause.message).toBe(`invalid campaign input: profiles.1 (${bad.name}): data.mountPoint: must not contain whitespace, "\\" or "#" (fstab cannot hold them)`);
        const history = await handle.fetchHistory();
        expect((history.events ?? []).filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toHaveLength(0);
        for (const p of [good, bad]) expect(fleet.host(p).calls).toEqual([]);
      });
    } finally {
      fleet.dispose();
    }
  });
});
