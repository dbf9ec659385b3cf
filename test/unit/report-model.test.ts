// The report model from the recorded histories in test/histories (real runs on the dev server),
// and from statuses and messages made up for what those runs do not cover (retries, skipped and
// pending hosts, wave approvals, bad payloads).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { describe, expect, test } from 'vitest';
import { readHistory, type HistoryFacts } from '../../lib/report-history.js';
import { campaignReport, hostReport, waitedForOperator } from '../../lib/report-model.js';

// The histories as first recorded, which are never re-recorded (the replay test keeps them as
// the version already out there): the client identities asserted below are theirs.
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const readRecorded = (file: string): HistoryFacts =>
  readHistory(temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(HISTORIES, file), 'utf8'))));
const facts = (name: string): HistoryFacts => readRecorded(`${name}.profile-checked-in-sandbox.json`);
const hostOf = (name: string) => {
  const f = facts(name);
  return { f, m: hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history: f, now: f.closedAt! }) };
};

describe('readHistory', () => {
  test('a history with the input check as a local activity reads like the first recorded one', () => {
    for (const name of ['upgrade-committed-approved-by-update', 'upgrade-rolled-back-power-reset', 'rollback-committed']) {
      const now = readRecorded(`${name}.json`);
      const first = facts(name);
      expect(now.workflowType).toBe(first.workflowType);
      expect(now.close).toBe(first.close);
      expect((now.result as { state: string }).state).toBe((first.result as { state: string }).state);
      expect(now.messages.map((m) => [m.name, m.input])).toEqual(first.messages.map((m) => [m.name, m.input]));
    }
  });

  test('a campaign history: its result, and each child run with the status it returned', () => {
    const f = facts('campaign-committed');
    expect(f.workflowType).toBe('fleetCampaign');
    expect(f.close).toBe('completed');
    expect(f.children).toHaveLength(3);
    for (const c of f.children) {
      expect(c.workflowId).toMatch(/^ab-upgrade\/fake-/);
      expect(c.close).toBe('completed');
      expect((c.result as { state: string }).state).toBe('committed');
      expect(c.closedAt).toBeGreaterThan(c.startedAt);
    }
  });

  test('a failed run: the status its UpgradeFailed failure carries', () => {
    const f = facts('upgrade-install-failed');
    expect(f.close).toBe('failed');
    expect((f.result as { state: string }).state).toBe('failed');
  });

  test('updates and signals with their input and the sending client identity', () => {
    expect(facts('upgrade-committed-approved-by-update').messages).toEqual([
      { name: 'approve', via: 'update', input: { by: 'alice' }, identity: '30328@vm', at: expect.any(Number) },
    ]);
    expect(facts('upgrade-rolled-back-operator').messages.map((m) => [m.name, m.via, m.input])).toEqual([['hostRecovered', 'signal', { by: 'erin' }]]);
  });

  test('a history without its start event is refused', () => {
    expect(() => readHistory({ events: [] })).toThrow(/first event is not WorkflowExecutionStarted/);
  });
});

describe('host report', () => {
  test('committed after an approval by update: who approved, from which client; downtime both ways', () => {
    const { m } = hostOf('upgrade-committed-approved-by-update');
    expect(m.kind).toBe('host');
    expect(m.state).toBe('committed');
    const [run] = m.runs;
    expect(run!.phases.map((p) => p.phase)).toEqual(expect.arrayContaining(['inspect', 'approval', 'trialBoot', 'awaitComeback', 'checkHealth', 'commitSlot']));
    expect(run!.downtime).toMatchObject({ source: 'measured', hostToSshdS: 0.4, hostToServicesS: 0.6 });
    expect(run!.downtime!.ourMs).toBe(run!.downtime!.to - run!.downtime!.from);
    expect(run!.downtime!.firstAnswerMs).toBeLessThanOrEqual(run!.downtime!.ourMs);
    expect(run!.failures).toEqual([]);
    expect(m.approvals).toEqual([expect.objectContaining({ who: 'alice', identity: '30328@vm', decision: 'approved', via: 'update' })]);
    expect(m.axis.start).toBeLessThanOrEqual(run!.start!);
    expect(m.axis.end).toBeGreaterThanOrEqual(run!.end!);
  });

  test('rejected: who, why; no reboot, so no downtime', () => {
    const { m } = hostOf('upgrade-rejected');
    expect(m.state).toBe('rejected');
    expect(m.reason).toBe('rejected by bob: freeze');
    expect(m.runs[0]!.downtime).toBeUndefined();
    expect(m.runs[0]!.failures).toEqual([expect.objectContaining({ phase: 'approval', outcome: 'rejected' })]);
    expect(m.approvals).toEqual([expect.objectContaining({ who: 'bob', decision: 'rejected', reason: 'freeze', identity: '30328@vm' })]);
  });

  test('failed install: the failed phase and the reason', () => {
    const { m } = hostOf('upgrade-install-failed');
    expect(m.state).toBe('failed');
    expect(m.reason).toMatch(/^installRelease failed: debootstrap failed/);
    expect(m.runs[0]!.failures).toEqual([expect.objectContaining({ phase: 'installRelease', outcome: 'failed' })]);
    expect(m.runs[0]!.rolledBack).toBe(false);
  });

  test.each(['upgrade-rolled-back-health-ssh', 'upgrade-rolled-back-power-reset', 'upgrade-rolled-back-operator'])(
    '%s: rolled back, downtime from the timeline (reboot issued → back healthy)',
    (name) => {
      const { m } = hostOf(name);
      const run = m.runs[0]!;
      expect(run.state).toBe('rolled-back');
      expect(run.rolledBack).toBe(true);
      expect(run.reason).toBeTruthy();
      expect(run.phases.some((p) => p.kind === 'rollback')).toBe(true);
      expect(run.downtime).toMatchObject({ source: 'timeline' });
      expect(run.downtime!.ourMs).toBeGreaterThan(0);
      const reboot = run.phases.find((p) => p.phase === 'trialBoot')!;
      expect(run.downtime!.from).toBe(reboot.end);
      expect(run.downtime!.hostToServicesS).toBeUndefined();
    },
  );

  test('the operator who reset the host by hand is listed', () => {
    const { m } = hostOf('upgrade-rolled-back-operator');
    expect(m.approvals).toContainEqual(expect.objectContaining({ who: 'erin', decision: 'recovered', via: 'signal', identity: '30328@vm' }));
    expect(m.runs[0]!.phases.find((p) => p.phase === 'rollback.awaitOperator')?.kind).toBe('wait');
  });

  test('a status that does not check out: the report says which field', () => {
    const { f } = hostOf('upgrade-rejected');
    const bad = structuredClone(f.result) as { timeline: { startedAt: string }[] };
    bad.timeline[0]!.startedAt = 'yesterday';
    const m = hostReport({ status: bad, workflowId: 'ab-upgrade/h', now: 0 });
    expect(m.problems.join('\n')).toMatch(/status of h: timeline\.0\.startedAt: must be an ISO 8601 time/);
    expect(m.runs[0]!.phases).toEqual([]);
  });

  test('a message whose payload is not {"by": ...} is reported, not shown as an approval', () => {
    const { f } = hostOf('upgrade-committed-approved-by-update');
    const history = { ...f, messages: [...f.messages, { name: 'approve', via: 'signal' as const, input: { who: 'x' }, at: f.startedAt }] };
    const m = hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history, now: 0 });
    expect(m.problems).toEqual([expect.stringMatching(/^signal approve at .*: by: .*\(the workflow ignored it\)$/)]);
    expect(m.approvals).toHaveLength(1);
  });
});

describe('campaign report', () => {
  test('every host of the recorded campaign, by wave, with its downtime', () => {
    const f = facts('campaign-committed');
    const m = campaignReport({ status: f.result, histories: [f], live: new Map(), now: f.closedAt! });
    const status = f.result as { hosts: { name: string; wave: number }[] };
    expect(m.kind).toBe('campaign');
    expect(m.state).toBe('done');
    expect(m.runs.map((r) => [r.host, r.wave, r.attempt, r.state]).sort()).toEqual(status.hosts.map((h) => [h.name, h.wave, 1, 'committed']).sort());
    for (const r of m.runs) {
      expect(r.downtime?.source).toBe('measured');
      expect(r.phases.length).toBeGreaterThan(8);
    }
    expect(m.waves.map((w) => w.hosts.length)).toEqual([1, 2]);
    expect(m.approvals).toEqual([expect.objectContaining({ who: 'test', decision: 'started' })]);
    expect(m.failures).toEqual({ count: 0, budget: 0, hosts: [] });
    expect(m.problems).toEqual([]);
  });

  test('retries, a wave approval with its reason and client, pause, a skipped and a pending host, a live status', () => {
    const f = facts('campaign-committed');
    const status = structuredClone(f.result) as {
      hosts: { name: string; state: string; runId?: string; attempts: number; reason?: string }[];
      waves: { number: number; approvedBy?: string; startedAt?: string }[];
    };
    const [first, second] = f.children;
    const host = first!.workflowId.replace('ab-upgrade/', '');
    // The first host ran twice: a failed attempt, then the recorded committed one (the campaign's latest run id).
    const failed = { ...first!, runId: 'run-failed', startedAt: first!.startedAt - 60_000, closedAt: first!.startedAt - 30_000, close: 'failed' as const, result: undefined, failure: 'installRelease failed: disk full' };
    // The second host is still running: its status comes from the live query.
    const running = { ...second!, close: 'open' as const, closedAt: undefined, result: undefined };
    const live = new Map([[second!.runId, { ...(second!.result as object), state: 'running', endedAt: undefined }]]);
    status.hosts.push({ name: 'never', state: 'skipped', workflowId: 'ab-upgrade/never', attempts: 0 } as never);
    status.hosts.push({ name: 'later', state: 'pending', workflowId: 'ab-upgrade/later', attempts: 0 } as never);
    status.waves[1]!.approvedBy = 'carol';
    const w2 = Date.parse(status.waves[1]!.startedAt!);
    const history: HistoryFacts = {
      ...f,
      children: [failed, running, ...f.children.slice(2), first!],
      messages: [
        { name: 'pause', via: 'signal', input: { by: 'dave', reason: 'lunch' }, identity: '7@ops', at: w2 - 5000 },
        { name: 'approveWave', via: 'update', input: { by: 'carol', reason: 'canary fine', wave: 2 }, identity: '42@desk', at: w2 - 100 },
      ],
    };
    const m = campaignReport({ status, histories: [history], live, now: f.closedAt! });
    const runsOf = (name: string) => m.runs.filter((r) => r.host === name);
    expect(runsOf(host).map((r) => [r.attempt, r.state, r.reason ?? ''])).toEqual([
      [1, 'failed', 'installRelease failed: disk full'],
      [2, 'committed', ''],
    ]);
    expect(runsOf(second!.workflowId.replace('ab-upgrade/', ''))[0]!.state).toBe('running'); // the host's own live status
    expect(runsOf(second!.workflowId.replace('ab-upgrade/', ''))[0]!.phases.length).toBeGreaterThan(8);
    expect(m.skipped).toEqual(['never']);
    expect(runsOf('later')).toEqual([expect.objectContaining({ state: 'pending', phases: [], problems: [] })]);
    expect(m.approvals).toContainEqual(expect.objectContaining({ who: 'carol', identity: '42@desk', what: expect.stringMatching(/^wave 2 /), decision: 'approved', reason: 'canary fine', at: w2 - 100 }));
    expect(m.approvals).toContainEqual(expect.objectContaining({ who: 'dave', decision: 'pause', reason: 'lunch', identity: '7@ops' }));
    expect(m.approvals.map((a) => a.at)).toEqual([...m.approvals.map((a) => a.at)].sort((a, b) => a! - b!));
    expect(m.axis.start).toBeLessThanOrEqual(failed.startedAt);
  });

  test("a host reset by hand in a campaign: who said so comes from that run's own history", () => {
    const f = facts('campaign-committed');
    const operator = facts('upgrade-rolled-back-operator');
    const child = f.children[0]!;
    expect(waitedForOperator(child.result)).toBe(false);
    expect(waitedForOperator(operator.result)).toBe(true);
    // The first host's run, as if it had been the rollback that waited for erin.
    const history: HistoryFacts = { ...f, children: [{ ...child, result: { ...(operator.result as object), host: child.workflowId.slice('ab-upgrade/'.length) } }, ...f.children.slice(1)] };
    const m = campaignReport({ status: f.result, histories: [history], live: new Map(), runMessages: new Map([[child.runId, operator.messages]]), now: f.closedAt! });
    expect(m.approvals).toContainEqual(expect.objectContaining({ who: 'erin', decision: 'recovered', identity: '30328@vm' }));
    expect(m.runs[0]!.rolledBack).toBe(true);
  });

  test('a campaign status that does not check out is refused, naming the field', () => {
    const f = facts('campaign-committed');
    const bad = { ...(f.result as object), waves: 'none' };
    expect(() => campaignReport({ status: bad, histories: [f], live: new Map(), now: 0 })).toThrow(/^campaign status: waves: /);
  });
});
