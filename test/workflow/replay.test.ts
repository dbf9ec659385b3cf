// Determinism: workflow histories must replay against the current workflow code.
//  - every history recorded in test/histories/*.json (the versions already out there: a change
//    that breaks one needs `patched()`); each scenario below must have one, a missing one (or a
//    missing directory) fails;
//  - fresh histories of the same scenarios, run now, each asserting how it ended.
// AB_UPGRADE_RECORD_HISTORIES=1 npx vitest run test/workflow/replay.test.ts  (re)writes every fixture;
// AB_UPGRADE_RECORD_HISTORIES=<name>,<name> writes only those (a new scenario's, keeping the others).
//
// Format: protobufjs `History.toObject` JSON (enums as names, int64 as strings, bytes base64),
// read back with `History.fromObject`. Not the CLI's protobuf-JSON, because historyFromJSON
// fails in this install: @temporalio/common and @temporalio/proto each carry their own copy of
// protobufjs 8, and protojson's `instanceof Type` check fails across the copies.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { campaignStartOptions, type CampaignState } from '../../lib/campaign-api.js';
import type { SlotName } from '../../lib/contract.js';
import {
  approveUpdate,
  finalStatusFrom,
  hostRecoveredSignal,
  rejectUpdate,
  startOptions,
  statusQuery,
  type RollbackInput,
  type WorkflowState,
} from '../../lib/workflow-api.js';
import { fleetCampaign, rollbackHost, upgradeHost } from '../../workflows/index.js';
import { FakeFleet } from '../helpers/fake-fleet.js';
import type { FakeHost, FakeHostScript } from '../helpers/fake-host.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

const History = temporal.api.history.v1.History;
const HISTORIES = join(dirname(fileURLToPath(import.meta.url)), '..', 'histories');
const RECORD = process.env.AB_UPGRADE_RECORD_HISTORIES ?? '';
const records = (name: string) => RECORD === '1' || RECORD.split(',').includes(name);

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

type Scenario = {
  name: string;
  workflow?: 'rollbackHost' | 'fleetCampaign';
  script?: FakeHostScript;
  profile?: Parameters<typeof fakeProfile>[0];
  input?: Partial<RollbackInput>;
  drive?: (handle: WorkflowHandle, fake: FakeHost) => Promise<void>;
  /** How the run ends, and (host workflows) which slot the host runs then. */
  end: WorkflowState | CampaignState;
  slot?: SlotName;
  /** Changes the host must have seen (FakeHost.effects), besides the end. */
  effects?: string[];
};

const scenarios: Scenario[] = [
  {
    name: 'upgrade-committed-approved-by-update',
    drive: async (handle) => {
      await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval');
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    },
    end: 'committed',
    slot: 'b',
  },
  {
    name: 'upgrade-rejected',
    drive: async (handle) => {
      await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval');
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'bob', reason: 'freeze' }] });
    },
    end: 'rejected',
    slot: 'a',
  },
  { name: 'upgrade-install-failed', script: { fail: { installRelease: 'debootstrap failed' } }, input: { autoApprove: true }, end: 'failed', slot: 'a' },
  { name: 'upgrade-rolled-back-power-reset', script: { hangOnBootInto: ['b'] }, input: { autoApprove: true }, end: 'rolled-back', slot: 'a' },
  { name: 'upgrade-rolled-back-health-ssh', script: { healthFailsOn: ['b'] }, input: { autoApprove: true }, end: 'rolled-back', slot: 'a' },
  {
    name: 'upgrade-rolled-back-operator',
    script: { hangOnBootInto: ['b'] },
    profile: { power: { driver: 'none' } },
    input: { autoApprove: true },
    drive: async (handle, fake) => {
      await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-operator');
      fake.operatorReset();
      await handle.signal(hostRecoveredSignal, { by: 'erin' });
    },
    end: 'rolled-back',
    slot: 'a',
  },
  { name: 'rollback-committed', workflow: 'rollbackHost', input: { autoApprove: true }, end: 'committed', slot: 'a' },
  {
    name: 'upgrade-committed-kexec',
    profile: { reboot: 'kexec' },
    input: { autoApprove: true },
    end: 'committed',
    slot: 'b',
    effects: ['trial kexec → b', 'commit b'],
  },
  {
    name: 'rollback-committed-carry-back',
    workflow: 'rollbackHost',
    input: { autoApprove: true, carryBack: true },
    end: 'committed',
    slot: 'a',
    effects: ['carry back b→a', 'one-time reboot → a', 'commit a'],
  },
  { name: 'campaign-committed', workflow: 'fleetCampaign', end: 'done' },
];

/** A small campaign: three fake hosts in waves of 1 and 2, every one commits. */
async function runCampaign(taskQueue: string): Promise<WorkflowHandle> {
  const fleet = new FakeFleet();
  const profiles = fleet.addMany(3);
  const worker = await fakeWorker(env, fleet, taskQueue);
  try {
    return await worker.runUntil(async () => {
      const name = uniqueName('campaign');
      const handle = await env.client.workflow.start(fleetCampaign, {
        ...campaignStartOptions(name, taskQueue),
        args: [{ name, profiles, waves: [1, 2], failureBudget: 0, approveEachWave: false, retryWithinMs: 1000, requestedBy: 'test' }],
      });
      const result = await handle.result();
      expect(result.state).toBe('done');
      expect(result.hosts.map((h) => [h.name, h.state]).sort()).toEqual(profiles.map((p) => [p.name, 'committed']).sort());
      for (const p of profiles) expect(fleet.host(p).running).toBe('b');
      return handle;
    });
  } finally {
    fleet.dispose();
  }
}

/** One host's upgrade or rollback, driven by the scenario; checks how it ended. */
async function runHost(sc: Scenario, taskQueue: string): Promise<WorkflowHandle> {
  const fake = newFake(sc.script);
  const profile = fakeProfile(sc.profile);
  const worker = await fakeWorker(env, fake, taskQueue);
  try {
    return await worker.runUntil(async () => {
      if (sc.workflow === 'rollbackHost') {
        fake.running = 'b';
        fake.defaultSlot = 'b';
      }
      const h = await env.client.workflow.start(sc.workflow === 'rollbackHost' ? rollbackHost : upgradeHost, {
        ...startOptions(profile, taskQueue),
        args: [{ profile, ...sc.input }],
      });
      await sc.drive?.(h, fake);
      const status = await h.result().catch((err: unknown) => finalStatusFrom(err) ?? Promise.reject(err));
      expect(status.state).toBe(sc.end);
      expect(fake.running).toBe(sc.slot);
      expect(fake.defaultSlot).toBe(sc.slot);
      if (sc.effects) expect(fake.effects).toEqual(expect.arrayContaining(sc.effects));
      return h;
    });
  } finally {
    fake.dispose();
  }
}

// Fresh runs first: with AB_UPGRADE_RECORD_HISTORIES they write the fixtures replayed below.
describe('fresh histories replay deterministically', () => {
  test.each(scenarios)('$name', async (sc) => {
    const taskQueue = uniqueName('tq');
    const handle = sc.workflow === 'fleetCampaign' ? await runCampaign(taskQueue) : await runHost(sc, taskQueue);
    const history = await handle.fetchHistory();
    expect(history.events?.length).toBeGreaterThan(5);
    await Worker.runReplayHistory({ workflowBundle: env.bundle }, history, handle.workflowId);
    if (records(sc.name)) {
      mkdirSync(HISTORIES, { recursive: true });
      const obj = History.toObject(history as temporal.api.history.v1.History, { longs: String, enums: String, bytes: String });
      writeFileSync(join(HISTORIES, `${sc.name}.json`), JSON.stringify(obj, null, 1) + '\n');
    }
  });
});

describe('recorded histories replay', () => {
  test('test/histories holds a recorded history of every scenario', () => {
    expect(existsSync(HISTORIES), `${HISTORIES} is missing`).toBe(true);
    const missing = scenarios.map((sc) => `${sc.name}.json`).filter((f) => !existsSync(join(HISTORIES, f)));
    expect(missing, 'recorded histories missing (AB_UPGRADE_RECORD_HISTORIES=<name> records one)').toEqual([]);
  });

  // Every scenario's fixture, and any other history kept there (older versions).
  const files = [...new Set([...scenarios.map((sc) => `${sc.name}.json`), ...(existsSync(HISTORIES) ? readdirSync(HISTORIES).filter((f) => f.endsWith('.json')) : [])])].sort();
  test.each(files)('%s', async (file) => {
    const history = History.fromObject(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: env.bundle }, history, file.replace(/\.json$/, ''));
  });
});
