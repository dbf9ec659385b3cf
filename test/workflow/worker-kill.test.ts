// Durability against a crash: the worker running an upgrade is a separate process and is killed
// with SIGKILL (no graceful shutdown, no activity cancellation, nothing flushed). A new worker —
// here in the test process — continues the same simulated host, restored from the JSON file the
// first worker kept it in (test/helpers/fake-worker-process.ts), and finishes the upgrade. The
// persisted call log (which worker, which attempt) shows every side effect happened exactly once.
//
// The killed install is only noticed by the server through its heartbeat timeout (30 s, the
// install's activity options), so the install test takes ~40 s.
//
// The worker processes' output (they log at DEBUG) is secret-scanned with the histories when the
// file ends; the profiles here reference a real private key file and a BMC password file, and a
// last test checks the scan finds a secret planted in a worker process's log.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { HostActivities } from '../../lib/contract.js';
import type { ProfileInput } from '../../lib/profile.js';
import { approveUpdate, startOptions, statusQuery } from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import { readPersistedHost, type FleetHost, type PersistedHost } from '../helpers/fake-worker-process.js';
import type { FakeHostScript } from '../helpers/fake-host.js';
import { KillHarness, bounded, callsOf as named, workflowTaskIdentities } from '../helpers/kill-harness.js';
import { secretFixtures, secretsIn, type SecretFixtures } from '../helpers/secret-scan.js';
import { eventually, fakeProfile, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
let harness: KillHarness;
let secrets: SecretFixtures;

beforeAll(async () => {
  env = await setupWorkflowEnv();
  harness = new KillHarness(env);
  secrets = secretFixtures();
});
afterAll(async () => {
  await harness?.dispose();
  await env?.close();
  secrets?.remove();
});

/** A profile that references the secret files: an SSH private key, and an IPMI password file. */
const withSecrets = (o: Partial<ProfileInput> = {}) =>
  fakeProfile({
    auth: { identityFile: secrets.identityFile },
    power: { driver: 'ipmi', address: '192.0.2.20', user: secrets.user, passwordFile: secrets.passwordFile },
    ...o,
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
const NEVER: (keyof HostActivities)[] = ['removeBootEntry', 'rebootToSlot', 'powerReset'];

/** The one host of a test, by its profile's name. */
const fleetOf = (name: string, stateFile: string, script: FakeHostScript): FleetHost[] => [{ name, stateFile, script }];

function expectCommittedOnB(s: PersistedHost): void {
  expect(s.running).toBe('b');
  expect(s.defaultSlot).toBe('b');
  expect(s.up).toBe(true);
  expect(s.bootId).toBe('boot-2'); // exactly one reboot since the start
  for (const name of ONCE) expect(named(s, name).length, name).toBe(1);
  for (const name of NEVER) expect(named(s, name).length, name).toBe(0);
  // The one trial boot, and the commit of slot b, made by the worker that survived.
  expect(named(s, 'trialBoot').map((c) => [c.by, c.attempt])).toEqual([['worker-2', 1]]);
  expect(named(s, 'commitSlot').map((c) => [c.by, c.attempt, c.args[1]])).toEqual([['worker-2', 1, 'b']]);
}

test('worker process SIGKILLed during a slow install; a new worker retries it from its last heartbeat and finishes', { timeout: 180_000 }, async () => {
  const script: FakeHostScript = { installDelayMs: 4_000 };
  const profile = withSecrets();
  const taskQueue = uniqueName('tq-kill');
  const stateFile = harness.stateFile(profile.name);

  const w1 = await harness.child(taskQueue, fleetOf(profile.name, stateFile, script));
  const handle = await env.client.workflow.start(upgradeHost, {
    ...startOptions(profile, taskQueue),
    args: [{ profile, autoApprove: true }],
  });

  // Kill once the server holds a heartbeat with real progress (≥ 1 s of the 4 s install).
  const heartbeatMs = await eventually(
    async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const install = pending.find((a) => a.activityType?.name === 'installRelease');
      const payload = install?.heartbeatDetails?.payloads?.[0]?.data;
      if (!payload) return false;
      const done = (JSON.parse(Buffer.from(payload).toString('utf8')) as { doneMs?: number }).doneMs ?? 0;
      return done >= 1_000 ? done : false;
    },
    30_000,
    50,
  );
  await harness.sigkill(w1);

  const afterKill = readPersistedHost(stateFile);
  expect(named(afterKill, 'installRelease').map((c) => [c.by, c.attempt])).toEqual([['worker-1', 1]]);
  expect(afterKill.calls.map((c) => c.name)).toEqual(['inspectHost', 'prepareSpare', 'installRelease']);
  expect(afterKill.running).toBe('a');
  expect((await handle.describe()).status.name).toBe('RUNNING');

  // worker-2 polls at once; the server hands it the install only after the heartbeat timeout.
  const { fleet, worker } = await harness.takeOver(taskQueue, fleetOf(profile.name, stateFile, script));
  const result = await worker.runUntil(bounded(handle.result(), 120_000, 'upgrade result'));
  fleet.dispose();

  expect(result.state).toBe('committed');
  const s = readPersistedHost(stateFile);
  expectCommittedOnB(s);
  // The install re-ran once, on worker-2, as attempt 2, resuming from the server's last heartbeat.
  expect(named(s, 'installRelease').map((c) => [c.by, c.attempt])).toEqual([
    ['worker-1', 1],
    ['worker-2', 2],
  ]);
  expect(s.installResumedFrom).toHaveLength(2);
  expect(s.installResumedFrom[0]).toBe(0);
  expect(s.installResumedFrom[1]).toBeGreaterThanOrEqual(heartbeatMs);
  expect(s.installResumedFrom[1]).toBeLessThan(4_000);
  // Everything after the install ran on worker-2.
  const afterInstall = s.calls.slice(s.calls.findIndex((c) => c.by === 'worker-2'));
  expect(afterInstall.every((c) => c.by === 'worker-2')).toBe(true);

  // The history: one ActivityTaskStarted for the install, attempt 2 by worker-2, whose last
  // failure is the heartbeat timeout that detected the dead worker.
  const history = (await handle.fetchHistory()).events ?? [];
  const scheduled = new Map<string, string>();
  for (const ev of history) {
    const a = ev.activityTaskScheduledEventAttributes;
    if (a?.activityType?.name && ev.eventId != null) scheduled.set(String(ev.eventId), a.activityType.name);
  }
  const installStarts = history
    .map((ev) => ev.activityTaskStartedEventAttributes)
    .filter((a) => a && scheduled.get(String(a.scheduledEventId)) === 'installRelease');
  expect(installStarts).toHaveLength(1);
  expect(installStarts[0]!.attempt).toBe(2);
  expect(installStarts[0]!.identity).toBe('worker-2');
  expect(installStarts[0]!.lastFailure?.timeoutFailureInfo?.timeoutType).toBe(4); // TIMEOUT_TYPE_HEARTBEAT
  expect(await workflowTaskIdentities(handle)).toEqual(['worker-1', 'worker-2']);
});

test('worker process SIGKILLed while awaiting approval; a new worker takes the approval and finishes', { timeout: 120_000 }, async () => {
  const script: FakeHostScript = {};
  // Approval must outlive the kill and the take-over comfortably.
  const profile = withSecrets({ timings: { approvalTimeout: '2m', comebackDeadline: '3s', pollInterval: '100ms', healthTimeout: '5s' } });
  const taskQueue = uniqueName('tq-kill');
  const stateFile = harness.stateFile(profile.name);

  const w1 = await harness.child(taskQueue, fleetOf(profile.name, stateFile, script));
  const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile }] });
  await eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval', 30_000);
  await harness.sigkill(w1);

  const afterKill = readPersistedHost(stateFile);
  expect(afterKill.calls.map((c) => [c.name, c.by])).toEqual([
    ['inspectHost', 'worker-1'],
    ['prepareSpare', 'worker-1'],
    ['installRelease', 'worker-1'],
    ['carryConfig', 'worker-1'],
    ['addBootEntry', 'worker-1'],
  ]);
  expect(afterKill.entry?.targetSlot).toBe('b');
  expect(afterKill.running).toBe('a');

  const { fleet, worker } = await harness.takeOver(taskQueue, fleetOf(profile.name, stateFile, script));
  const result = await worker.runUntil(
    bounded(
      (async () => {
        await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice' }] });
        return handle.result();
      })(),
      60_000,
      'approval and upgrade result',
    ),
  );
  fleet.dispose();

  expect(result.state).toBe('committed');
  expect(result.decision).toMatchObject({ approved: true, by: 'alice' });
  const s = readPersistedHost(stateFile);
  expectCommittedOnB(s);
  // Nothing before the approval was redone: the install ran once, on worker-1.
  expect(named(s, 'installRelease').map((c) => [c.by, c.attempt])).toEqual([['worker-1', 1]]);
  expect(s.installResumedFrom).toEqual([0]);
  expect(named(s, 'addBootEntry').map((c) => c.by)).toEqual(['worker-1']);
  expect(s.calls.slice(5).map((c) => [c.name, c.by])).toEqual([
    ['finalSync', 'worker-2'],
    ['trialBoot', 'worker-2'],
    ['awaitComeback', 'worker-2'],
    ['checkHealth', 'worker-2'],
    ['commitSlot', 'worker-2'],
    ['measureHostDowntime', 'worker-2'],
  ]);
  expect(await workflowTaskIdentities(handle)).toEqual(['worker-1', 'worker-2']);
});

test("the worker processes' logs hold no secret, and the scan finds one planted there", { timeout: 60_000 }, async () => {
  // The workers above logged at DEBUG; with the histories, their output is scanned.
  const clean = await env.scanSecrets();
  expect(clean.findings).toEqual([]);
  expect(clean.workerLogs).toBeGreaterThanOrEqual(3); // the in-process log and two worker processes
  expect(clean.histories).toBeGreaterThanOrEqual(2);

  // A worker process whose activity fails with a message holding a secret: its log repeats it.
  const planted = { label: 'a planted BMC password', value: `planted-${randomBytes(12).toString('hex')}` };
  const profile = withSecrets();
  const taskQueue = uniqueName('tq-plant');
  const script: FakeHostScript = { fail: { inspectHost: `ipmitool -P ${planted.value} failed` } };
  const w = await harness.child(taskQueue, fleetOf(profile.name, harness.stateFile(profile.name), script));
  const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true }] });
  await bounded(handle.result().catch(() => undefined), 30_000, 'the run with the planted secret');
  await eventually(async () => w.output().includes(planted.value), 10_000);
  await harness.sigkill(w);
  // Found in that worker's log by the scan's own rules; not found without the planted secret.
  expect(secretsIn(w.output(), 'worker process', [planted])).toEqual(['worker process: a planted BMC password']);
  expect(secretsIn(w.output(), 'worker process')).toEqual([]);
});
