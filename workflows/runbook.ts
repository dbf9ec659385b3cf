// The machinery shared by upgradeHost and rollbackHost: status and timeline, message handlers,
// activity options, the approval gate, the comeback watch, the recovery loop (SSH reboot →
// power reset → operator) and the compensation stack.
//
// Deterministic workflow code only: imports @temporalio/workflow, pure lib code and *types* of
// the activities (lib/contract.ts). Checked by scripts/lint-workflows.js.
//
// Versioning: the workflows are written as a sequence of named phases (methods here, steps in
// upgrade-host.ts / rollback-host.ts) so that a later change can be gated with
// `patched('<phase>-v2')` around exactly the phase it touches. No patches exist yet.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  TimeoutFailure,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import {
  FailureTypes,
  type ComebackResult,
  type HealthReport,
  type HostActivities,
  type HostFacts,
  type ProbeResult,
  type SlotName,
  type TrialBootResult,
} from '../lib/contract.js';
import { hostStateSignal } from '../lib/campaign-api.js';
import { formatDurationMs } from '../lib/duration.js';
import type { Profile } from '../lib/profile.js';
import {
  UPGRADE_FAILED,
  approveSignal,
  approveUpdate,
  hostRecoveredSignal,
  rejectSignal,
  rejectUpdate,
  statusQuery,
  type Decision,
  type DecisionAck,
  type DecisionInput,
  type HostRecoveredInput,
  type PhaseName,
  type PhaseOutcome,
  type PhaseRecord,
  type UpgradeInput,
  type WorkflowState,
  type WorkflowStatus,
  type WorkflowType,
} from '../lib/workflow-api.js';

const nowIso = (): string => new Date().toISOString();

/**
 * Failure types never worth retrying, plus our own. CommandFailed is not among them: a command
 * can fail for a passing reason (mirror hiccup, dropped link); each phase's attempt bound decides.
 */
const NON_RETRYABLE: string[] = [...Object.values(FailureTypes).filter((t) => t !== FailureTypes.CommandFailed), UPGRADE_FAILED];

/**
 * Activity options per concern. Retry intervals are fixed (they are not part of the profile);
 * timeouts that depend on the host's timings are derived from the profile.
 */
export function activitiesFor(profile: Profile) {
  const t = profile.timings;
  const with_ = (o: ActivityOptions): ActivityOptions => ({
    ...o,
    retry: { ...o.retry, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  const few = { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '30s' } as const;
  return {
    /** Read-only facts: a few retries (SSH hiccups). */
    inspect: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '2m', retry: { ...few, maximumAttempts: 3 } })),
    /** mkfs of the spare, config carry-over, final sync: safe to repeat. */
    prepare: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '15m', retry: { ...few, maximumAttempts: 3 } })),
    /** debootstrap / image stream: long, heartbeats, idempotent (resumes from heartbeat details). */
    install: proxyActivities<HostActivities>(
      with_({
        startToCloseTimeout: '3h',
        heartbeatTimeout: '30s',
        retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
      }),
    ),
    /** GRUB entry add/remove: idempotent; removal is a compensation, so it tries harder. */
    grub: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', retry: { ...few, maximumAttempts: 10 } })),
    /** trialBoot / rebootToSlot: NEVER retried automatically — rebooting twice is wrong. */
    reboot: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', retry: { maximumAttempts: 1 } })),
    /**
     * The comeback poll: heartbeats every poll, retried without limit; the workflow's own timer
     * (comebackDeadline) bounds it and cancels it.
     */
    comeback: proxyActivities<HostActivities>(
      with_({
        startToCloseTimeout: t.comebackDeadline + 60_000,
        heartbeatTimeout: Math.max(30_000, 3 * t.pollInterval),
        retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '10s' },
      }),
    ),
    health: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: t.healthTimeout + 60_000, retry: { ...few, maximumAttempts: 3 } }),
    ),
    /** grub-set-default on the running slot: idempotent, must eventually happen. */
    commit: proxyActivities<HostActivities>(with_({ startToCloseTimeout: '5m', retry: { ...few, maximumAttempts: 10 } })),
    /** A quick look: is it up, which boot, which slot. */
    probe: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '1m', retry: { initialInterval: '1s', maximumAttempts: 2 } }),
    ),
    /** Hard reset through the power driver: one retry (a failed IPMI call usually did nothing). */
    power: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '2m', retry: { initialInterval: '2s', maximumAttempts: 2 } }),
    ),
    /** Best effort. */
    measure: proxyActivities<HostActivities>(
      with_({ startToCloseTimeout: '2m', retry: { initialInterval: '1s', maximumAttempts: 2 } }),
    ),
  };
}
export type Activities = ReturnType<typeof activitiesFor>;

/** One line for an error, unwrapping ActivityFailure/ChildWorkflowFailure to the real cause. */
export function describeError(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  if (e instanceof TimeoutFailure) return `timed out (${e.timeoutType ?? 'timeout'})`;
  if (e instanceof ApplicationFailure) return e.type && e.type !== 'Error' ? `${e.message} [${e.type}]` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

function validateDecision(d: unknown): asserts d is DecisionInput {
  if (!d || typeof d !== 'object') throw new Error('payload must be an object {"by": "...", "reason"?: "..."}');
  const { by, reason } = d as Record<string, unknown>;
  if (typeof by !== 'string' || by.trim() === '' || by.length > 200) throw new Error('"by" must name who decides (1-200 chars)');
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 2000)) {
    throw new Error('"reason" must be a string of at most 2000 chars');
  }
}

function checkInput(input: UpgradeInput): void {
  const p = input?.profile as Partial<Profile> | undefined;
  const problems: string[] = [];
  if (!p || typeof p !== 'object') problems.push('profile is missing');
  else {
    if (typeof p.name !== 'string' || !p.name) problems.push('profile.name is missing (parse the profile with parseProfile first)');
    if (typeof p.host !== 'string' || !p.host) problems.push('profile.host is missing');
    const t = p.timings as Record<string, unknown> | undefined;
    for (const k of ['approvalTimeout', 'comebackDeadline', 'pollInterval', 'healthTimeout']) {
      const v = t?.[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
        problems.push(`profile.timings.${k} must be a positive number of milliseconds (got ${JSON.stringify(v)})`);
      }
    }
    if (!p.power || typeof p.power !== 'object' || typeof p.power.driver !== 'string') problems.push('profile.power.driver is missing');
  }
  if (problems.length) {
    throw ApplicationFailure.nonRetryable(`invalid workflow input: ${problems.join('; ')}`, FailureTypes.InvalidInput);
  }
}

type Compensation = { phase: PhaseName; run: () => Promise<unknown> };

/**
 * State and steps of one run. Construct it first thing in the workflow: the constructor
 * registers the query, update and signal handlers before anything can block.
 */
export class Runbook {
  readonly status: WorkflowStatus;
  readonly profile: Profile;
  private acts?: Activities;
  private decision?: Decision;
  private recovered?: HostRecoveredInput & { at: string };
  private readonly compensations: Compensation[] = [];
  facts?: HostFacts;
  /** Last boot id we know of: what "a new boot" is compared with. */
  lastBootId?: string;
  /** Set just before the first reboot is issued: from then on a failure means "bring the host back". */
  rebootIssued = false;
  /** Why the last watchComeback gave up early (the poll failed for good), if it did. */
  comebackFailure?: string;
  private lastWatch?: { issuedAt: number; deadlineMs: number };

  constructor(workflowType: WorkflowType, private readonly input: UpgradeInput) {
    this.profile = input?.profile;
    this.status = {
      workflowType,
      host: input?.profile?.name ?? input?.profile?.host ?? '(unknown)',
      phase: 'starting',
      state: 'running',
      timeline: [],
      requestedBy: input?.requestedBy,
      notices: [],
      startedAt: nowIso(),
    };

    setHandler(statusQuery, () => this.status);
    setHandler(approveUpdate, (d) => this.decide(true, d, 'update'), {
      validator: (d) => this.validateDecisionNow(d),
    });
    setHandler(rejectUpdate, (d) => this.decide(false, d, 'update'), {
      validator: (d) => this.validateDecisionNow(d),
    });
    setHandler(approveSignal, (d) => this.decideBySignal(true, d));
    setHandler(rejectSignal, (d) => this.decideBySignal(false, d));
    setHandler(hostRecoveredSignal, (r) => {
      if (this.status.state !== 'awaiting-operator') {
        this.notice(`hostRecovered from ${r?.by ?? '?'} ignored: the workflow is ${this.status.state}, not awaiting the operator`);
        return;
      }
      if (!r || typeof r.by !== 'string' || !r.by.trim()) {
        this.notice('hostRecovered ignored: the payload must be {"by": "<who>", "note"?: "..."}');
        return;
      }
      this.recovered = { by: r.by, note: typeof r.note === 'string' ? r.note : undefined, at: nowIso() };
    });
  }

  /** Validates the input and builds the activity proxies (inside the workflow's try). */
  start(): Activities {
    checkInput(this.input);
    this.acts = activitiesFor(this.profile);
    return this.acts;
  }

  get a(): Activities {
    if (!this.acts) throw ApplicationFailure.nonRetryable('Runbook.start() was not called', FailureTypes.InvalidInput);
    return this.acts;
  }

  get workflowId(): string {
    return workflowInfo().workflowId;
  }

  notice(text: string): void {
    this.status.notices.push(`${nowIso()} ${text}`);
    log.warn(text);
  }

  setState(state: WorkflowState, waitingFor?: string): void {
    const changed = this.status.state !== state;
    this.status.state = state;
    this.status.waitingFor = waitingFor;
    if (changed) this.reportToParent();
  }

  /**
   * A campaign (the parent) cannot query its children: tell it when this host starts or stops
   * waiting (awaiting-operator counts as failed there). Only children signal, so the histories
   * of standalone runs are unchanged.
   */
  private reportToParent(): void {
    const parent = workflowInfo().parent;
    if (!parent) return;
    const { state, waitingFor } = this.status;
    getExternalWorkflowHandle(parent.workflowId, parent.runId)
      .signal(hostStateSignal, { host: this.status.host, runId: workflowInfo().runId, state, ...(waitingFor ? { waitingFor } : {}) })
      .catch((err) => this.notice(`could not tell campaign ${parent.workflowId} that the host is ${state}: ${describeError(err)}`));
  }

  // -------------------------------------------------------------------------------------------
  // Timeline

  /** Runs one phase, recording its start, end, outcome and a one-line detail. */
  async phase<T>(name: PhaseName, fn: () => Promise<T>, describe?: (r: T) => string | undefined): Promise<T> {
    const rec = this.begin(name);
    try {
      const r = await fn();
      this.end(rec, 'ok', describe?.(r));
      return r;
    } catch (err) {
      this.end(rec, isCancellation(err) ? 'cancelled' : 'failed', describeError(err));
      throw err;
    }
  }

  begin(name: PhaseName): PhaseRecord {
    const rec: PhaseRecord = { phase: name, startedAt: nowIso() };
    this.status.timeline.push(rec);
    this.status.phase = name;
    return rec;
  }

  end(rec: PhaseRecord, outcome: PhaseOutcome, detail?: string): void {
    rec.endedAt = nowIso();
    rec.outcome = outcome;
    if (detail !== undefined) rec.detail = detail;
  }

  /** Runs a step whose failure must not fail the workflow; records it and returns undefined. */
  async bestEffort<T>(name: PhaseName, fn: () => Promise<T>, describe?: (r: T) => string | undefined): Promise<T | undefined> {
    try {
      return await this.phase(name, fn, describe);
    } catch (err) {
      if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
      this.notice(`${name} failed (best effort, ignored): ${describeError(err)}`);
      return undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Common steps

  async inspect(): Promise<HostFacts> {
    const facts = await this.phase(
      'inspect',
      () => this.a.inspect.inspectHost(this.profile),
      (f) => `${f.hostname}: ${f.distro.prettyName}, running slot ${f.active.name} (${f.active.device}), spare ${f.spare.name} (${f.spare.device}), ${f.bootMode}`,
    );
    this.facts = facts;
    this.lastBootId = facts.bootId;
    this.status.facts = facts;
    return facts;
  }

  /** Push a compensation; they run in reverse order on failure, rejection or rollback. */
  pushCompensation(phase: PhaseName, run: () => Promise<unknown>): void {
    this.compensations.push({ phase, run });
  }

  /** Runs (and empties) the compensation stack in reverse. A failing compensation is noted, not fatal. */
  async runCompensations(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (let c = this.compensations.pop(); c; c = this.compensations.pop()) {
        try {
          await this.phase(c.phase, c.run);
        } catch (err) {
          this.notice(`compensation ${c.phase} failed: ${describeError(err)} — check the host's GRUB configuration by hand`);
        }
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Approval

  private validateDecisionNow(d: unknown): void {
    validateDecision(d);
    if (this.status.state !== 'awaiting-approval') {
      throw new Error(`${this.status.host} is not awaiting approval (state ${this.status.state}, phase ${this.status.phase})`);
    }
    if (this.decision) throw new Error(`already decided by ${this.decision.by}`);
  }

  private decide(approved: boolean, d: DecisionInput, via: Decision['via']): DecisionAck {
    const at = nowIso();
    this.decision = { approved, by: d.by, ...(d.reason !== undefined ? { reason: d.reason } : {}), at, via };
    return { accepted: true, approved, by: d.by, at };
  }

  private decideBySignal(approved: boolean, d: DecisionInput): void {
    const what = approved ? 'approve' : 'reject';
    try {
      this.validateDecisionNow(d);
    } catch (err) {
      this.notice(`${what} signal from ${(d as { by?: unknown })?.by ?? '?'} ignored: ${describeError(err)}`);
      return;
    }
    this.decide(approved, d, 'signal');
  }

  /**
   * The human gate before the reboot. Returns the decision; a timeout is a rejection
   * (via 'timeout'). `autoApprove` skips the wait.
   */
  async awaitApproval(what: string): Promise<Decision> {
    const rec = this.begin('approval');
    if (this.input.autoApprove) {
      this.decision = { approved: true, by: this.input.requestedBy ?? 'autoApprove', at: nowIso(), via: 'auto' };
      this.status.decision = this.decision;
      this.end(rec, 'skipped', `autoApprove (requested by ${this.decision.by})`);
      return this.decision;
    }
    const timeout = this.profile.timings.approvalTimeout;
    this.setState(
      'awaiting-approval',
      `approval to ${what} (within ${formatDurationMs(timeout)}): ` +
        `ab-upgrade approve ${this.profile.name} (or: ab-upgrade reject ${this.profile.name} --reason "..."), or ` +
        `temporal workflow update execute --workflow-id '${this.workflowId}' --name approve --input '{"by":"<you>"}'`,
    );
    let decided: boolean;
    try {
      decided = await condition(() => this.decision !== undefined, timeout);
    } catch (err) {
      this.end(rec, 'cancelled');
      throw err;
    }
    this.setState('running');
    if (!decided || !this.decision) {
      this.decision = {
        approved: false,
        by: 'timeout',
        reason: `nobody approved within ${formatDurationMs(timeout)}`,
        at: nowIso(),
        via: 'timeout',
      };
    }
    const d = this.decision;
    this.status.decision = d;
    this.end(
      rec,
      d.approved ? 'ok' : d.via === 'timeout' ? 'timed-out' : 'rejected',
      d.via === 'timeout' ? d.reason : `${d.approved ? 'approved' : 'rejected'} by ${d.by}${d.reason ? `: ${d.reason}` : ''} (${d.via})`,
    );
    return d;
  }

  /** Ends a run whose reboot was not approved: compensations, state 'rejected'. */
  async endRejected(d: Decision): Promise<WorkflowStatus> {
    await this.runCompensations();
    const reason =
      d.via === 'timeout' ? `approval timed out: ${d.reason}` : `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
    return this.finish('rejected', reason);
  }

  // -------------------------------------------------------------------------------------------
  // Comeback watch

  /**
   * Races the heartbeating `awaitComeback` activity (in its own cancellation scope) against a
   * workflow timer ending `deadlineMs` after `issuedAt`. Returns the comeback, or undefined when
   * the timer won (the activity is then cancelled) or the poll failed for good.
   */
  async watchComeback(
    name: 'awaitComeback' | 'rollback.awaitComeback',
    bootIdBefore: string,
    issuedAt: number,
    deadlineMs: number,
  ): Promise<ComebackResult | undefined> {
    const t = this.profile.timings;
    const rec = this.begin(name);
    this.comebackFailure = undefined;
    this.lastWatch = { issuedAt, deadlineMs };
    // Measured from issuedAt (the activity's clock): time already spent since the reboot counts,
    // but give the host at least a couple of polls even if the worker was away for a while.
    const elapsed = Math.max(0, Date.now() - issuedAt);
    const timerMs = Math.min(deadlineMs, Math.max(deadlineMs - elapsed, 2 * t.pollInterval, 1000));

    const pollScope = new CancellationScope();
    const timerScope = new CancellationScope();
    const poll = pollScope
      .run(() => this.a.comeback.awaitComeback(this.profile, bootIdBefore, t.pollInterval))
      .then((r) => ({ kind: 'back' as const, r }), (err: unknown) => ({ kind: 'error' as const, err }));
    const timer = timerScope
      .run(() => sleep(timerMs))
      .then(() => ({ kind: 'deadline' as const }), (err: unknown) => ({ kind: 'error' as const, err }));

    const first = await Promise.race([poll, timer]);
    if (first.kind === 'deadline') {
      pollScope.cancel();
      await poll; // settles at once (TRY_CANCEL); the activity stops at its next heartbeat
      this.end(rec, 'timed-out', `no new boot answered within ${formatDurationMs(deadlineMs)} of the reboot`);
      return undefined;
    }
    timerScope.cancel();
    await timer;
    if (first.kind === 'error') {
      // The whole workflow is being cancelled: let the caller clean up.
      if (isCancellation(first.err) && CancellationScope.current().consideredCancelled) {
        this.end(rec, 'cancelled');
        throw first.err;
      }
      this.comebackFailure = describeError(first.err);
      this.end(rec, 'failed', this.comebackFailure);
      this.notice(`${name} failed: ${this.comebackFailure}`);
      return undefined;
    }
    const back = first.r;
    this.lastBootId = back.bootId;
    this.end(
      rec,
      'ok',
      `slot ${back.slot} (${back.rootDevice}), boot ${back.bootId}, answered ${formatDurationMs(Math.max(0, back.answeredAt - issuedAt))} after the reboot (${back.probes} probes)`,
    );
    return back;
  }

  // -------------------------------------------------------------------------------------------
  // Recovery: bring the host back onto `target` (the slot GRUB defaults to)

  private async probe(): Promise<ProbeResult> {
    try {
      const p = await this.phase(
        'rollback.probe',
        () => this.a.probe.probeHost(this.profile),
        (p) => (p.reachable ? `answers: slot ${p.slot ?? '?'}, boot ${p.bootId ?? '?'}` : `does not answer: ${p.detail}`),
      );
      if (p.reachable && p.bootId) this.lastBootId = p.bootId;
      return p;
    } catch (err) {
      return { reachable: false, bootId: null, slot: null, detail: `probe failed: ${describeError(err)}` };
    }
  }

  /**
   * Brings the host back onto `target`, durably, in a non-cancellable scope:
   * answers → reboot it there over SSH; does not answer → reset through the power driver
   * (the trial/one-time boot is spent and GRUB's default is `target`, so a reset lands there);
   * still not back → reset once more; then (or with no power driver at all) wait for the
   * operator's `hostRecovered` signal and check again. Returns when a probe or comeback shows
   * the host on `target`.
   */
  async recoverTo(target: SlotName): Promise<void> {
    const hasDriver = this.profile.power.driver !== 'none';
    let noDriver = !hasDriver;
    let resets = 0;
    let sshRebootFailed = false;
    let automatic = 0;
    await this.waitOutFailedWatch();
    for (;;) {
      const probe = await this.probe();
      if (probe.reachable && probe.slot === target) return;

      let bootIdBefore = probe.bootId ?? this.lastBootId ?? '';
      let issuedAt: number;
      if (automatic < 3 && probe.reachable && !sshRebootFailed) {
        try {
          const r = await this.phase(
            'rollback.rebootToSlot',
            () => this.a.reboot.rebootToSlot(this.profile, this.facts!, target, false),
            (r) => `${r.mode} reboot into slot ${target}`,
          );
          bootIdBefore = r.bootIdBefore || bootIdBefore;
          issuedAt = r.issuedAt;
        } catch (err) {
          sshRebootFailed = true;
          this.notice(`rebooting into slot ${target} over SSH failed: ${describeError(err)}`);
          continue;
        }
      } else if (automatic < 3 && !noDriver && resets < 2) {
        issuedAt = Date.now();
        try {
          await this.phase(
            'rollback.powerReset',
            () => this.a.power.powerReset(this.profile),
            () => `hard reset through ${this.profile.power.driver} (reset ${resets + 1} of 2)`,
          );
          resets++;
        } catch (err) {
          resets++;
          if (failureType(err) === FailureTypes.NoPowerDriver) noDriver = true;
          this.notice(`power reset failed: ${describeError(err)}`);
          continue;
        }
      } else {
        await this.awaitOperator(target, probe, noDriver);
        sshRebootFailed = false;
        automatic = 0;
        continue; // probe again: believe the host, not the message
      }
      automatic++;
      const back = await this.watchComeback('rollback.awaitComeback', bootIdBefore, issuedAt, this.profile.timings.comebackDeadline);
      if (back && back.slot === target) return;
      if (back) this.notice(`host came back on slot ${back.slot}, not ${target}`);
      else await this.waitOutFailedWatch();
    }
  }

  /**
   * After a comeback poll that failed for good before its deadline, give the host the rest of
   * that deadline before a probe decides what to do: never reset a machine that is still booting.
   */
  private async waitOutFailedWatch(): Promise<void> {
    const w = this.lastWatch;
    if (!this.comebackFailure || !w) return;
    this.comebackFailure = undefined;
    const rest = w.issuedAt + w.deadlineMs - Date.now();
    if (rest > 0) await sleep(rest);
  }

  private async awaitOperator(target: SlotName, probe: ProbeResult, noDriver: boolean): Promise<void> {
    const p = this.profile;
    const slotDev = this.facts ? (this.facts.active.name === target ? this.facts.active : this.facts.spare).device : '';
    const situation = probe.reachable
      ? `answers on slot ${probe.slot ?? '?'} but could not be rebooted into slot ${target} automatically`
      : `does not answer (${probe.detail}) and ${noDriver ? 'has no usable power driver' : `resets through ${p.power.driver} did not bring it back`}`;
    const rec = this.begin('rollback.awaitOperator');
    this.recovered = undefined;
    this.setState(
      'awaiting-operator',
      `host ${p.name} (${p.host}) ${situation}. Reset or power-cycle it by hand (out-of-band console / KVM) so it boots slot ${target}` +
        `${slotDev ? ` (${slotDev})` : ''}, GRUB's default; when it answers: ab-upgrade recovered ${p.name}, or ` +
        `temporal workflow signal --workflow-id '${this.workflowId}' --name hostRecovered --input '{"by":"<you>"}'`,
    );
    await condition(() => this.recovered !== undefined);
    const r = this.recovered!;
    this.setState('running');
    this.end(rec, 'ok', `${r.by} says the host was recovered${r.note ? `: ${r.note}` : ''}`);
  }

  /**
   * Automatic rollback: back onto `target`, health checked there (recorded, not fatal), then the
   * compensations in reverse. Runs non-cancellable: a cancel request must not strand the host.
   */
  async rollBack(target: SlotName, reason: string): Promise<WorkflowStatus> {
    this.notice(`rolling back to slot ${target}: ${reason}`);
    await CancellationScope.nonCancellable(async () => {
      await this.recoverTo(target);
      const health = await this.bestEffort(
        'rollback.checkHealth',
        () => this.a.health.checkHealth(this.profile),
        (h) => summarizeHealth(h),
      );
      if (health) {
        this.status.health = health;
        if (!health.ok) this.notice(`slot ${target} is back but its health checks fail: ${summarizeHealth(health)}`);
      }
      await this.runCompensations();
    });
    return this.finish('rolled-back', reason);
  }

  // -------------------------------------------------------------------------------------------
  // Endings

  /**
   * Downtime as the users saw it (reboot issued → healthy), plus the host's own account from
   * its clock and unit timestamps (best effort: a failure here never fails the workflow).
   */
  async recordDowntime(boot: TrialBootResult, back: ComebackResult, health: HealthReport): Promise<void> {
    const hostSide = await this.bestEffort('measureHostDowntime', () => this.a.measure.measureHostDowntime(this.profile, boot), (d) =>
      `to sshd ${d.toSshdS ?? '?'}s, to services ${d.toServicesS ?? '?'}s`,
    );
    this.status.downtime = {
      issuedAt: boot.issuedAt,
      answeredAt: back.answeredAt,
      healthyAt: health.checkedAt,
      downtimeMs: health.checkedAt - boot.issuedAt,
      ...(hostSide ? { hostSide } : {}),
    };
  }

  finish(state: WorkflowState, reason?: string): WorkflowStatus {
    this.status.state = state;
    this.status.waitingFor = undefined;
    if (reason !== undefined) this.status.reason = reason;
    this.status.phase = 'done';
    this.status.endedAt = nowIso();
    return this.status;
  }

  /**
   * The catch-all of a workflow. Cancellation: clean up (bring the host home if a reboot was
   * issued, compensations) and end cancelled. After a reboot was issued: roll back, end
   * 'rolled-back'. Before: compensations, then fail the execution with a non-retryable
   * `UpgradeFailed` carrying the final status (see UPGRADE_FAILED in lib/workflow-api.ts).
   */
  async fail(err: unknown, home: SlotName | undefined): Promise<WorkflowStatus> {
    const failedPhase = this.status.phase;
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(async () => {
        if (this.rebootIssued && home) await this.recoverTo(home);
        await this.runCompensations();
      });
      this.finish('cancelled', `cancelled during ${failedPhase}`);
      throw err;
    }
    const cause = describeError(err);
    if (this.rebootIssued && home) return this.rollBack(home, `${failedPhase} failed: ${cause}`);
    await this.runCompensations();
    const status = this.finish('failed', `${failedPhase} failed: ${cause}`);
    throw ApplicationFailure.create({
      message: status.reason,
      type: UPGRADE_FAILED,
      nonRetryable: true,
      details: [status],
      cause: err instanceof Error ? err : undefined,
    });
  }
}

export function summarizeHealth(h: HealthReport): string {
  const bad = h.checks.filter((c) => !c.ok);
  if (h.ok) return `healthy (${h.checks.length} checks)`;
  return `${bad.length} of ${h.checks.length} checks failed: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`;
}

/**
 * "host did not come back on slot b within 5m00s", or, when the poll failed for good before the
 * deadline, "waiting for the host to come back on slot b failed: <cause>".
 */
export function comebackMissed(slot: SlotName, deadlineMs: number, failure?: string): string {
  return failure
    ? `waiting for the host to come back on slot ${slot} failed: ${failure}`
    : `host did not come back on slot ${slot} within ${formatDurationMs(deadlineMs)}`;
}
