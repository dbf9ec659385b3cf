// Determinism: workflow histories must replay against the current workflow code.
//  - every history recorded in test/histories/*.json (the versions already out there: a change
//    that breaks one needs `patched()`);
//  - fresh histories of the main scenarios, run now.
// AB_UPGRADE_RECORD_HISTORIES=1 npx vitest run test/workflow/replay.test.ts  (re)writes the fixtures.
//
// Format: protobufjs `History.toObject` JSON (enums as names, int64 as strings, bytes base64),
// read back with `History.fromObject`. Not the CLI's protobuf-JSON, because historyFromJSON
// fails in this install: @temporalio/common and @temporalio/proto each carry their own copy of
// protobufjs 8, and protojson's `instanceof Type` check fails across the copies.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { approveUpdate, hostRecoveredSignal, rejectUpdate, startOptions, statusQuery, type UpgradeInput } from '../../lib/workflow-api.js';
import { rollbackHost, upgradeHost } from '../../workflows/index.js';
import type { FakeHost, FakeHostScript } from '../helpers/fake-host.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

const History = temporal.api.history.v1.History;
const HISTORIES = join(dirname(fileURLToPath(import.meta.url)), '..', 'histories');
const RECORD = process.env.AB_UPGRADE_RECORD_HISTORIES === '1';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

const recorded = (() => {
  try {
    return readdirSync(HISTORIES).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
})();

describe.runIf(recorded.length > 0)('recorded histories replay', () => {
  test.each(recorded)('%s', async (file) => {
    const history = History.fromObject(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: env.bundle }, history, file.replace(/\.json$/, ''));
  });
});

type Scenario = {
  name: string;
  workflow?: 'rollbackHost';
  script?: FakeHostScript;
  profile?: Parameters<typeof fakeProfile>[0];
  input?: Partial<UpgradeInput>;
  drive?: (handle: WorkflowHandle<typeof upgradeHost>, fake: FakeHost) => Promise<void>;
};

const scenarios: Scenario[] = [
  {
    name: 'upgrade-committed-approved-by-update',
    drive: async (handle) => {
      await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval');
      await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
    },
  },
  {
    name: 'upgrade-rejected',
    drive: async (handle) => {
      await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval');
      await handle.executeUpdate(rejectUpdate, { args: [{ by: 'bob', reason: 'freeze' }] });
    },
  },
  { name: 'upgrade-install-failed', script: { fail: { installRelease: 'debootstrap failed' } }, input: { autoApprove: true } },
  { name: 'upgrade-rolled-back-power-reset', script: { hangOnBootInto: ['b'] }, input: { autoApprove: true } },
  { name: 'upgrade-rolled-back-health-ssh', script: { healthFailsOn: ['b'] }, input: { autoApprove: true } },
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
  },
  { name: 'rollback-committed', workflow: 'rollbackHost', input: { autoApprove: true } },
];

describe('fresh histories replay deterministically', () => {
  test.each(scenarios)('$name', async (sc) => {
    const fake = newFake(sc.script);
    const profile = fakeProfile(sc.profile);
    const taskQueue = uniqueName('tq');
    const worker = await fakeWorker(env, fake, taskQueue);
    try {
      const handle = await worker.runUntil(async () => {
        if (sc.workflow === 'rollbackHost') {
          fake.running = 'b';
          fake.defaultSlot = 'b';
        }
        const h = await env.client.workflow.start(sc.workflow === 'rollbackHost' ? rollbackHost : upgradeHost, {
          ...startOptions(profile, taskQueue),
          args: [{ profile, ...sc.input }],
        });
        await sc.drive?.(h, fake);
        await h.result().catch(() => undefined);
        return h;
      });
      const history = await handle.fetchHistory();
      expect(history.events?.length).toBeGreaterThan(5);
      await Worker.runReplayHistory({ workflowBundle: env.bundle }, history, handle.workflowId);
      if (RECORD) {
        mkdirSync(HISTORIES, { recursive: true });
        const obj = History.toObject(history as temporal.api.history.v1.History, { longs: String, enums: String, bytes: String });
        writeFileSync(join(HISTORIES, `${sc.name}.json`), JSON.stringify(obj, null, 1) + '\n');
      }
    } finally {
      fake.dispose();
    }
  });
});
