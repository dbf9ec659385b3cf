// Kill points: the worker running upgrades (and rollbackHost runs) is a separate process, killed
// with SIGKILL while each run stands at its own point — blocked inside an activity before or
// after its side effect (FakeHostScript.hang), or at the approval wait — and a new worker in the
// test process takes over the same simulated hosts, restored from the files the first one kept
// them in. One row per point; each asserts that its run ends in one of its two allowed states
// (committed on the new slot, or back on the old slot with the boot entry removed — for
// rollbackHost: on the previous slot, or still on the current one), and, from the persisted host,
// exactly which changes were made to it and how often: an idempotent step whose report was lost
// runs again, a reboot never happens twice.
//
// The points share one child worker process (a process start costs seconds of CPU) and one
// take-over worker, each with its own host and workflow: beforeAll drives every run to its point,
// kills the child once all are there, has the server time out each killed attempt
// (expireRunningAttempt: the runbook's start-to-close timeouts are minutes long) — except for the
// rows marked `byHeartbeat`, whose attempts the server gives up on by itself, through the
// activity's own heartbeat timeout (30 s) — starts worker-2 and collects how each run ended; the
// rows check the outcomes.
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SlotName } from '../../lib/contract.js';
import type { Profile, ProfileInput } from '../../lib/profile.js';
import { approveUpdate, rejectUpdate, startOptions, statusQuery, type RollbackInput, type UpgradeResult } from '../../lib/workflow-api.js';
import { rollbackHost, upgradeHost } from '../../workflows/index.js';
import { hangMarker, type FakeHostScript, type HangPoint } from '../helpers/fake-host.js';
import { PersistentFakeHost, readPersistedHost, type FleetHost, type PersistedHost } from '../helpers/fake-worker-process.js';
import { KillHarness, bounded, callsOf, expireRunningAttempt, killedAttemptFailure, waitForHang, workflowTaskIdentities } from '../helpers/kill-harness.js';
import { eventually, fakeProfile, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
let harness: KillHarness;
beforeAll(async () => {
  env = await setupWorkflowEnv();
  harness = new KillHarness(env);
});
afterAll(async () => {
  await harness?.dispose();
  await env?.close();
});

type Attempts = [by: 'worker-1' | 'worker-2', attempt: number][];

interface KillPoint {
  name: string;
  workflow?: 'rollbackHost';
  /** Where worker-1 is killed: blocked in an activity, or waiting for the approval. */
  at: HangPoint | 'approval';
  /** The host's script for both workers (worker-1's also hangs at `at`). */
  script?: FakeHostScript;
  profile?: Partial<ProfileInput>;
  input?: Partial<RollbackInput>;
  /** An approval decision, sent to worker-1 before the kill or to worker-2 after the take-over. */
  decide?: { approved: boolean; when: 'before-kill' | 'after-take-over' };
  end: 'committed' | 'rolled-back' | 'rejected';
  /** The host's effect log at the end (FakeHost.effects). */
  effects: string[];
  /** The calls of the activity killed at `at`: which worker, which attempt. */
  calls?: Attempts;
  /**
   * Nothing forces the killed attempt's end: the server notices the dead worker through the
   * activity's heartbeat timeout alone, long before its start-to-close timeout.
   */
  byHeartbeat?: true;
}

// The changes an upgrade from slot a to slot b makes, in order.
const PREPARED = ['mkfs b', 'install b', 'carry a→b', 'boot entry b'];
const TRIAL = ['final sync a→b', 'trial boot → b', 'up on b'];
const COMMITTED = [...PREPARED, ...TRIAL, 'commit b'];
/** The automatic rollback over SSH: GRUB's default (slot a) and a reboot, then the compensation. */
const BACK_OVER_SSH = ['reboot → a', 'up on a', 'boot entry removed'];
const RETRIED: Attempts = [
  ['worker-1', 1],
  ['worker-2', 2],
];
const ONCE: Attempts = [['worker-1', 1]];
/** Not retried; the workflow's next step calls the activity again (a new activity, attempt 1). */
const CALLED_AGAIN: Attempts = [
  ['worker-1', 1],
  ['worker-2', 1],
];
const HEALTH_FAILS_ON_B: FakeHostScript = { healthFailsOn: ['b'] };
/**
 * The profile's timings: an approval wait that outlives the kill and the take-over, and a comeback
 * deadline that a host booting in 300 ms meets even on a busy machine.
 */
const timings = (t: Partial<Record<'approvalTimeout' | 'comebackDeadline', string>> = {}): Partial<ProfileInput> => ({
  timings: { approvalTimeout: '2m', comebackDeadline: '30s', pollInterval: '100ms', healthTimeout: '5s', ...t },
});
/** For a host that never comes back: the deadline is missed in any case. */
const SHORT_COMEBACK = timings({ comebackDeadline: '3s' });

const POINTS: KillPoint[] = [
  // upgradeHost, phase by phase.
  { name: 'after inspect (prepareSpare started, nothing formatted)', at: { activity: 'prepareSpare', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },
  { name: 'mid prepareSpare (spare formatted, not reported)', at: { activity: 'prepareSpare', when: 'after' }, end: 'committed', effects: ['mkfs b', ...COMMITTED], calls: RETRIED },
  { name: 'between prepareSpare and installRelease', at: { activity: 'installRelease', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },
  {
    name: 'mid installRelease (written and marked complete, not reported): the retry writes nothing',
    at: { activity: 'installRelease', when: 'after' },
    end: 'committed',
    effects: COMMITTED,
    calls: RETRIED,
  },
  {
    name: 'mid carryConfig (carried, not reported)',
    at: { activity: 'carryConfig', when: 'after' },
    byHeartbeat: true,
    end: 'committed',
    effects: ['mkfs b', 'install b', 'carry a→b', 'carry a→b', 'boot entry b', ...TRIAL, 'commit b'],
    calls: RETRIED,
  },
  { name: 'between carryConfig and addBootEntry (GRUB untouched)', at: { activity: 'addBootEntry', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },
  {
    name: 'mid addBootEntry (GRUB changed, not reported)',
    at: { activity: 'addBootEntry', when: 'after' },
    byHeartbeat: true,
    end: 'committed',
    effects: [...PREPARED, 'boot entry b', ...TRIAL, 'commit b'],
    calls: RETRIED,
  },
  { name: 'at the approval wait', at: 'approval', input: { autoApprove: false }, decide: { approved: true, when: 'after-take-over' }, end: 'committed', effects: COMMITTED },
  { name: 'between the approval and finalSync', at: { activity: 'finalSync', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },
  {
    name: 'mid finalSync (synced, not reported)',
    at: { activity: 'finalSync', when: 'after' },
    byHeartbeat: true,
    end: 'committed',
    effects: [...PREPARED, 'final sync a→b', ...TRIAL, 'commit b'],
    calls: RETRIED,
  },
  {
    name: 'trialBoot started, no reboot issued: never retried, nothing to undo but the boot entry',
    at: { activity: 'trialBoot', when: 'before' },
    end: 'rolled-back',
    effects: [...PREPARED, 'final sync a→b', 'boot entry removed'],
    calls: ONCE,
  },
  {
    name: 'trialBoot issued the reboot, not reported: never retried; the host is brought back over SSH',
    at: { activity: 'trialBoot', when: 'after' },
    byHeartbeat: true,
    end: 'rolled-back',
    effects: [...PREPARED, ...TRIAL, ...BACK_OVER_SSH],
    calls: ONCE,
  },
  {
    name: 'kexec trialBoot issued, not reported: never retried; the host is brought back over SSH',
    at: { activity: 'trialBoot', when: 'after' },
    profile: { reboot: 'kexec' },
    end: 'rolled-back',
    effects: [...PREPARED, 'final sync a→b', 'trial kexec → b', 'up on b', ...BACK_OVER_SSH],
    calls: ONCE,
  },
  {
    name: 'during awaitComeback (host rebooting)',
    at: { activity: 'awaitComeback', when: 'before' },
    // The comeback deadline outlives the kill: the retried poll, not the deadline, decides.
    profile: timings({ comebackDeadline: '2m' }),
    end: 'committed',
    effects: COMMITTED,
    calls: RETRIED,
  },
  { name: 'during checkHealth', at: { activity: 'checkHealth', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },
  { name: 'commitSlot committed, not reported', at: { activity: 'commitSlot', when: 'after' }, end: 'committed', effects: [...COMMITTED, 'commit b'], calls: RETRIED },
  { name: 'during measureHostDowntime', at: { activity: 'measureHostDowntime', when: 'before' }, end: 'committed', effects: COMMITTED, calls: RETRIED },

  // upgradeHost, its rollback and compensation paths.
  {
    name: 'health fails, rollback over SSH: rebootToSlot issued, not reported; never retried, the probe finds slot a',
    at: { activity: 'rebootToSlot', when: 'after' },
    script: HEALTH_FAILS_ON_B,
    end: 'rolled-back',
    effects: [...PREPARED, ...TRIAL, ...BACK_OVER_SSH],
    calls: ONCE,
  },
  {
    name: 'health fails, rollback over SSH: rebootToSlot started, no reboot issued; a power reset brings it back',
    at: { activity: 'rebootToSlot', when: 'before' },
    script: HEALTH_FAILS_ON_B,
    end: 'rolled-back',
    effects: [...PREPARED, ...TRIAL, 'power reset → a', 'up on a', 'boot entry removed'],
    calls: ONCE,
  },
  {
    name: 'never comes back: powerReset issued, not reported; not repeated',
    at: { activity: 'powerReset', when: 'after' },
    script: { hangOnBootInto: ['b'] },
    profile: SHORT_COMEBACK,
    end: 'rolled-back',
    effects: [...PREPARED, 'final sync a→b', 'trial boot → b', 'hangs booting b', 'power reset → a', 'up on a', 'boot entry removed'],
    calls: ONCE,
  },
  {
    name: 'never comes back: powerReset started, no reset issued; the rollback resets it once',
    at: { activity: 'powerReset', when: 'before' },
    script: { hangOnBootInto: ['b'] },
    profile: SHORT_COMEBACK,
    end: 'rolled-back',
    effects: [...PREPARED, 'final sync a→b', 'trial boot → b', 'hangs booting b', 'power reset → a', 'up on a', 'boot entry removed'],
    calls: CALLED_AGAIN,
  },
  {
    name: 'rejected: the compensation restored GRUB, not reported',
    at: { activity: 'removeBootEntry', when: 'after' },
    input: { autoApprove: false },
    decide: { approved: false, when: 'before-kill' },
    end: 'rejected',
    effects: [...PREPARED, 'boot entry removed', 'boot entry removed'],
    calls: RETRIED,
  },
  {
    name: 'approval timed out: the compensation started, GRUB untouched',
    at: { activity: 'removeBootEntry', when: 'before' },
    profile: timings({ approvalTimeout: '1s' }),
    input: { autoApprove: false },
    end: 'rejected',
    effects: [...PREPARED, 'boot entry removed'],
    calls: RETRIED,
  },
  {
    name: 'rolled back over SSH: the compensation restored GRUB, not reported',
    at: { activity: 'removeBootEntry', when: 'after' },
    byHeartbeat: true,
    script: HEALTH_FAILS_ON_B,
    end: 'rolled-back',
    effects: [...PREPARED, ...TRIAL, ...BACK_OVER_SSH, 'boot entry removed'],
    calls: RETRIED,
  },

  // rollbackHost: from slot b (committed) back to slot a.
  {
    name: 'rollbackHost at the approval wait',
    workflow: 'rollbackHost',
    at: 'approval',
    input: { autoApprove: false },
    decide: { approved: true, when: 'after-take-over' },
    end: 'committed',
    effects: ['one-time reboot → a', 'up on a', 'commit a'],
  },
  {
    name: 'rollbackHost mid carryBack (carried back, not reported)',
    workflow: 'rollbackHost',
    at: { activity: 'carryBack', when: 'after' },
    byHeartbeat: true,
    input: { carryBack: true },
    end: 'committed',
    effects: ['carry back b→a', 'carry back b→a', 'one-time reboot → a', 'up on a', 'commit a'],
    calls: RETRIED,
  },
  {
    name: 'rollbackHost: rebootToSlot issued, not reported; never retried, the host is returned to slot b',
    workflow: 'rollbackHost',
    at: { activity: 'rebootToSlot', when: 'after' },
    end: 'rolled-back',
    effects: ['one-time reboot → a', 'up on a', 'reboot → b', 'up on b'],
    calls: CALLED_AGAIN,
  },
  {
    name: 'rollbackHost: commitSlot committed, not reported',
    workflow: 'rollbackHost',
    at: { activity: 'commitSlot', when: 'after' },
    end: 'committed',
    effects: ['one-time reboot → a', 'up on a', 'commit a', 'commit a'],
    calls: RETRIED,
  },
];

/** Effects that reboot or reset the host: none may happen twice in one run. */
const REBOOTS = /^(trial boot|trial kexec|one-time reboot|reboot|power reset|operator reset) →/;

const START_TO_CLOSE = temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE;
const HEARTBEAT = temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT;

/** One point's run and what came of it. */
interface Run {
  pt: KillPoint;
  profile: Profile;
  stateFile: string;
  handle?: WorkflowHandle;
  /** The host when worker-1 was killed. */
  atKill?: PersistedHost;
  /** The failure that ended the killed attempt. */
  killedAttempt?: temporal.api.failure.v1.IFailure | null;
  result?: UpgradeResult;
  /** The host at the end. */
  final?: PersistedHost;
  /** Why the run did not get that far. */
  error?: unknown;
}

const runs = new Map<string, Run>();

/**
 * How many runs move at once: worker-1 drives this many to their points at a time, the server
 * times out this many killed attempts at a time, and worker-2 runs this many activities and
 * workflow tasks at a time. Every run at once is a burst of writes that the dev server's SQLite
 * store does not keep up with on a busy machine, and then it loses tasks (marked started, never
 * delivered, found again only at the attempt's timeout).
 */
const AT_ONCE = 6;

/**
 * Runs `step` on each run that has not failed yet, at most `concurrency` at a time; a failure is
 * kept on its run.
 */
async function each(step: (r: Run) => Promise<void>, concurrency = Infinity): Promise<void> {
  const queue = [...runs.values()].filter((r) => r.error === undefined);
  const lane = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      await step(r).catch(async (err: unknown) => {
        r.error = new Error(`${err instanceof Error ? err.message : String(err)}\n  the run: ${await whereIs(r.handle)}`, { cause: err });
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, lane));
}

/** Where a run stands: its state and phase, and its pending activities. */
async function whereIs(handle: WorkflowHandle | undefined): Promise<string> {
  if (!handle) return 'not started';
  try {
    const { state, phase } = await handle.query(statusQuery);
    const pending = ((await handle.describe()).raw.pendingActivities ?? []).map((a) => `${a.activityType?.name} attempt ${a.attempt} by ${a.lastWorkerIdentity || 'nobody yet'}`);
    return `${state}, phase ${phase}; pending: ${pending.join(', ') || 'none'}`;
  } catch (err) {
    return `unknown (${String(err)})`;
  }
}

const hangOf = (pt: KillPoint): HangPoint | undefined => (pt.at === 'approval' ? undefined : pt.at);

function decide(handle: WorkflowHandle, approved: boolean) {
  return handle.executeUpdate(approved ? approveUpdate : rejectUpdate, { args: [{ by: 'alice', reason: 'kill test' }] });
}

const awaitingApproval = (handle: WorkflowHandle) => eventually(async () => (await handle.query(statusQuery)).state === 'awaiting-approval', 30_000);

beforeAll(async () => {
  const taskQueue = uniqueName('tq-kill');
  for (const pt of POINTS) {
    const profile = fakeProfile({ ...timings(), ...pt.profile });
    const stateFile = harness.stateFile(profile.name);
    if (pt.workflow === 'rollbackHost') {
      // A host committed on slot b by an earlier upgrade.
      const seed = new PersistentFakeHost(stateFile, 'setup');
      seed.fake.running = 'b';
      seed.fake.defaultSlot = 'b';
      seed.dispose();
    }
    runs.set(pt.name, { pt, profile, stateFile });
  }
  const hosts = (worker: 1 | 2): FleetHost[] =>
    [...runs.values()].map(({ pt, profile, stateFile }) => {
      const hang = worker === 1 ? hangOf(pt) : undefined;
      return { name: profile.name, stateFile, script: { ...pt.script, ...(hang ? { hang } : {}) } };
    });

  // worker-1, in its own process, runs every run until it blocks at its point (or awaits the approval).
  const w1 = await harness.child(taskQueue, hosts(1));
  await each(async (r) => {
    const { pt, profile } = r;
    const handle: WorkflowHandle = await env.client.workflow.start(pt.workflow === 'rollbackHost' ? rollbackHost : upgradeHost, {
      ...startOptions(profile, taskQueue),
      args: [{ profile, autoApprove: true, ...pt.input }],
    });
    r.handle = handle;
    if (pt.decide?.when === 'before-kill') {
      await awaitingApproval(handle);
      await decide(handle, pt.decide.approved);
    }
    const hang = hangOf(pt);
    if (hang) await waitForHang(r.stateFile, hangMarker(hang), 60_000);
    else await awaitingApproval(handle);
  }, AT_ONCE);
  await harness.sigkill(w1);

  // The server times each killed attempt out; then worker-2 takes over and every run ends.
  await each(async (r) => {
    r.atKill = readPersistedHost(r.stateFile);
    const hang = hangOf(r.pt);
    if (hang && !r.pt.byHeartbeat) r.killedAttempt = await expireRunningAttempt(env.client, r.handle!, hang.activity);
  }, AT_ONCE);
  const { fleet, worker } = await harness.takeOver(taskQueue, hosts(2), {
    maxConcurrentActivityTaskExecutions: AT_ONCE,
    maxConcurrentWorkflowTaskExecutions: AT_ONCE,
  });
  await worker.runUntil(
    each(async (r) => {
      const { pt, handle } = r;
      if (pt.decide?.when === 'after-take-over') await decide(handle!, pt.decide.approved);
      r.result = (await bounded(handle!.result(), 90_000, 'the run after the take-over')) as UpgradeResult;
      const hang = hangOf(pt);
      if (hang && pt.byHeartbeat) r.killedAttempt = await killedAttemptFailure(handle!, hang.activity);
    }),
  );
  fleet.dispose();
  for (const r of runs.values()) if (r.result) r.final = readPersistedHost(r.stateFile);
}, 170_000);

describe('a worker killed at each point; a new worker finishes the run', () => {
  test.each(POINTS)('$name', async (pt) => {
    const r = runs.get(pt.name)!;
    if (r.error !== undefined) throw r.error;
    const { atKill, final: s, result, handle } = r as Required<Run>;
    const rollback = pt.workflow === 'rollbackHost';
    const [from, to]: SlotName[] = rollback ? ['b', 'a'] : ['a', 'b'];

    // One of the two allowed ends, and nothing in between.
    expect(result.state, result.reason).toBe(pt.end);
    const slot = pt.end === 'committed' ? to : from;
    expect({ running: s.running, defaultSlot: s.defaultSlot, nextOnce: s.nextOnce, up: s.up, hung: s.hung, pendingBoot: s.pendingBoot }).toEqual({
      running: slot,
      defaultSlot: slot,
      nextOnce: null,
      up: true,
      hung: false,
      pendingBoot: null,
    });
    if (!rollback) expect(s.entry?.targetSlot ?? null).toBe(pt.end === 'committed' ? 'b' : null);

    // Exactly these changes, in this order; no reboot twice; one boot id per boot.
    expect(s.effects).toEqual(pt.effects);
    const reboots = s.effects.filter((e) => REBOOTS.test(e));
    expect(reboots).toEqual([...new Set(reboots)]);
    expect(s.bootSeq).toBe(1 + s.effects.filter((e) => e.startsWith('up on ')).length);

    // worker-1 made every call up to the kill, worker-2 every call after it.
    expect(s.calls.slice(0, atKill.calls.length)).toEqual(atKill.calls);
    expect(atKill.calls.every((c) => c.by === 'worker-1')).toBe(true);
    expect(s.calls.slice(atKill.calls.length).every((c) => c.by === 'worker-2')).toBe(true);
    expect(await workflowTaskIdentities(handle)).toEqual(['worker-1', 'worker-2']);
    const hang = hangOf(pt);
    if (hang) {
      // The killed attempt ended by a timeout: its heartbeat timeout where nothing forced it (the
      // server noticed the dead worker by itself), else the forced start-to-close timeout (or the
      // heartbeat timeout, if that came first). The activity's calls, by worker and attempt.
      const timeout = r.killedAttempt?.timeoutFailureInfo?.timeoutType;
      if (pt.byHeartbeat) expect(timeout, 'the killed attempt timed out by its heartbeat timeout').toBe(HEARTBEAT);
      else expect([START_TO_CLOSE, HEARTBEAT]).toContain(timeout);
      expect(callsOf(s, hang.activity).map((c) => [c.by, c.attempt])).toEqual(pt.calls);
    }
  });
});
