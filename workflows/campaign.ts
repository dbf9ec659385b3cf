// fleetCampaign: upgrade many hosts in waves. Each host runs as a child upgradeHost under the
// host's own workflow id (ab-upgrade/<name>), so a host never runs two upgrades at once: a host
// already being upgraded or rolled back elsewhere is reported `busy`, not started again.
//
//   for each wave:  pause? → approval (approveEachWave) → maintenance window (durable timer)
//                   → the wave's hosts in parallel → count failures → over budget: halt
//   done or halted with failures: wait (retryWithin) for retry-failed, which runs the failed
//   hosts again in waves and then carries on with the waves not yet run.
//
// Cancelling the campaign cancels the running children; their own compensations and rollbacks
// bring the hosts back. Children are started with ParentClosePolicy ABANDON: a *terminated*
// campaign (or one continuing as new) never terminates a host mid-reboot.
//
// History: a wave adds ~8 events per host, plus a few per wave and per message; at the campaign
// sizes this is built for (hundreds of hosts) that stays well under Temporal's limits, but a long
// campaign retried many times could grow without bound, so it continues as new at a wave
// boundary when the history passes `historyLimit` events (or the server suggests it) and no
// child is still open (an open child's result would be lost to the next run).
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  log,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
// Not re-exported by @temporalio/workflow 1.24; it is what startChild rejects with.
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { budgetExceeded, failureBudget, planWaves } from '../lib/waves.js';
import {
  UNREACHABLE_FAILURE_TYPE,
  approveWaveSignal,
  approveWaveUpdate,
  campaignStatusQuery,
  hostStateSignal,
  isFailedHost,
  pauseSignal,
  resumeSignal,
  retryFailedSignal,
  retryFailedUpdate,
  type ApproveWaveAck,
  type ApproveWaveInput,
  type ByInput,
  type CampaignInput,
  type CampaignState,
  type CampaignStatus,
  type HostRecord,
  type HostState,
  type RetryFailedAck,
  type WaveRecord,
} from '../lib/campaign-api.js';
import { nextWindow } from '../lib/maintenance-window.js';
import { FailureTypes } from '../lib/contract.js';
import { hostWorkflowId } from '../lib/host-id.js';
import type { Profile } from '../lib/profile.js';
import { finalStatusFrom, type WorkflowStatus } from '../lib/workflow-api.js';
import { describeError } from './describe.js';
import { upgradeHost } from './upgrade-host.js';

const nowIso = (): string => new Date().toISOString();
const DEFAULT_HISTORY_LIMIT = 10_000;
const MAX_NOTICES = 50;

export async function fleetCampaign(input: CampaignInput): Promise<CampaignStatus> {
  return new Campaign(await checkedCampaignInput(input)).run();
}

/**
 * Every host's profile validated (defaults applied) before any child starts; the campaign fails
 * at once, naming each bad host and field. The children validate theirs again. The schemas are
 * imported here only (webpackMode "eager": evaluated on first use, from the one bundle file), so
 * that the host workflows, which share the bundle, never load them.
 */
async function checkedCampaignInput(input: CampaignInput): Promise<CampaignInput> {
  const fail = (problems: string[]) => ApplicationFailure.nonRetryable(`invalid campaign input: ${problems.join('; ')}`, FailureTypes.InvalidInput);
  if (!Array.isArray(input?.profiles) || input.profiles.length === 0) throw fail(['profiles: must list at least one host profile']);
  const problems: string[] = [];
  const skipped: unknown = input.skipped;
  if (skipped !== undefined && !(Array.isArray(skipped) && skipped.every((n) => typeof n === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(n)))) {
    problems.push('skipped: must list host names');
  }
  const { checkProfile, profileSchemas } = await import(/* webpackMode: "eager" */ '../lib/profile.js');
  const schemas = profileSchemas(); // built once for all hosts (and dropped after)
  const profiles = input.profiles.map((p, i) => {
    const checked = checkProfile(p, schemas);
    if ('profile' in checked) return checked.profile;
    const name = typeof (p as { name?: unknown })?.name === 'string' ? ` (${(p as { name: string }).name})` : '';
    problems.push(...checked.problems.map((line) => `profiles.${i}${name}: ${line}`));
    return p;
  });
  if (problems.length) throw fail(problems);
  return { ...input, profiles };
}

class Campaign {
  readonly status: CampaignStatus;
  private readonly profiles = new Map<string, Profile>();
  private paused: boolean;
  private retryBy?: ByInput;
  /** Children whose result this run still awaits. */
  private open = 0;

  constructor(private readonly input: CampaignInput) {
    for (const p of input.profiles) this.profiles.set(p.name, p);
    const total = input.profiles.length;
    this.status = input.carried?.status ?? {
      campaign: input.name,
      state: 'running',
      hosts: [
        ...input.profiles.map((p): HostRecord => ({ name: p.name, state: 'pending', workflowId: hostWorkflowId(p.name), attempts: 0 })),
        ...(input.skipped ?? []).map((name): HostRecord => ({ name, state: 'skipped', workflowId: hostWorkflowId(name), attempts: 0 })),
      ],
      waves: planWaves(input.profiles.map((p) => p.name), input.waves).map((hosts, i) => ({ number: i + 1, round: 1, hosts, state: 'pending' })),
      failures: { count: 0, budget: failureBudget(input.failureBudget, total), hosts: [] },
      pauseRequested: false,
      notices: [],
      requestedBy: input.requestedBy,
      startedAt: nowIso(),
      continuedAsNew: 0,
    };
    this.paused = input.carried?.paused ?? false;

    setHandler(campaignStatusQuery, () => this.status);
    setHandler(pauseSignal, (b) => this.setPaused(true, b));
    setHandler(resumeSignal, (b) => this.setPaused(false, b));
    setHandler(approveWaveUpdate, (a) => this.approve(a), { validator: (a) => void this.waveToApprove(a) });
    setHandler(approveWaveSignal, (a) => this.viaSignal('approveWave', a, () => this.approve(a)));
    setHandler(retryFailedUpdate, (b) => this.requestRetry(b), { validator: (b) => void this.retryable(b) });
    setHandler(retryFailedSignal, (b) => this.viaSignal('retryFailed', b, () => this.requestRetry(b)));
    setHandler(hostStateSignal, (r) => {
      const h = this.host(r.host);
      if (!h || (h.state !== 'running' && h.state !== 'awaiting-operator') || (h.runId && h.runId !== r.runId)) return;
      h.state = r.state === 'awaiting-operator' ? 'awaiting-operator' : 'running';
      h.reason = r.state === 'awaiting-operator' ? r.waitingFor : undefined;
      this.countFailures();
    });
  }

  async run(): Promise<CampaignStatus> {
    try {
      for (;;) {
        const halted = await this.runWaves();
        const failed = this.status.failures.count;
        if (!halted) this.setState('done', failed ? `${failed} host(s) failed: ab-upgrade campaign retry-failed ${this.input.name}` : undefined);
        if (failed === 0) break;
        const retry = await condition(() => this.retryBy !== undefined, this.input.retryWithinMs);
        if (!retry) break;
        this.scheduleRetry();
      }
      this.setState(this.status.state, this.open ? `${this.open} host(s) still open (awaiting an operator)` : undefined);
      await condition(() => this.open === 0); // their final state belongs in the result
      this.status.waitingFor = undefined;
      this.status.endedAt = nowIso();
      return this.status;
    } catch (err) {
      if (!isCancellation(err)) throw err;
      // The children were asked to cancel with us; wait until their compensations are done.
      await CancellationScope.nonCancellable(() => condition(() => this.open === 0));
      this.status.reason = 'cancelled';
      this.setState('cancelled');
      this.status.endedAt = nowIso();
      throw err;
    }
  }

  /** Runs waves until none is left (false) or the failure budget is exceeded (true). */
  private async runWaves(): Promise<boolean> {
    for (let w = this.nextWave(); w; w = this.nextWave()) {
      await this.gate(w);
      await this.runWave(w);
      if (budgetExceeded(this.status.failures.count, this.status.failures.budget)) {
        const f = this.status.failures;
        this.status.reason =
          `failure budget exceeded after wave ${w.number}: ${f.count} failed (budget ${f.budget}): ` +
          this.failedHosts().map((h) => `${h.name} (${h.state})`).join(', ');
        this.setState('halted', `retry the failed hosts: ab-upgrade campaign retry-failed ${this.input.name} (or cancel it)`);
        return true;
      }
      await this.maybeContinueAsNew();
    }
    this.status.currentWave = undefined;
    return false;
  }

  private nextWave(): WaveRecord | undefined {
    const w = this.status.waves.find((x) => x.state !== 'done');
    this.status.currentWave = w?.number;
    return w;
  }

  /** Waits until the wave may start: not paused, approved if it must be, inside the window. */
  private async gate(w: WaveRecord): Promise<void> {
    for (;;) {
      if (this.paused) {
        this.setState('paused', `resume: ab-upgrade campaign resume ${this.input.name}`);
        await condition(() => !this.paused);
        continue;
      }
      if (this.needsApproval(w) && !w.approvedBy) {
        this.setState('awaiting-approval', `approve wave ${w.number} (${w.hosts.join(', ')}): ab-upgrade campaign approve ${this.input.name} --wave ${w.number}`);
        await condition(() => w.approvedBy !== undefined || this.paused);
        continue;
      }
      const window = this.input.window;
      if (window) {
        const now = Date.now();
        const next = nextWindow(now, window);
        this.status.window = { open: next.opensAt <= now, opensAt: new Date(next.opensAt).toISOString(), closesAt: new Date(next.closesAt).toISOString() };
        if (next.opensAt > now) {
          this.setState('waiting-for-window', `the maintenance window opens at ${this.status.window.opensAt} (${window.timezone})`);
          await condition(() => this.paused, next.opensAt - now); // a durable timer; pause still counts
          continue;
        }
      }
      return;
    }
  }

  /** The first wave of a round was approved by whoever started it (start or retry-failed). */
  private needsApproval(w: WaveRecord): boolean {
    return this.input.approveEachWave && this.status.waves.find((x) => x.round === w.round) !== w;
  }

  private async runWave(w: WaveRecord): Promise<void> {
    this.setState('running');
    w.state = 'running';
    w.startedAt = nowIso();
    for (const name of w.hosts) this.startHost(this.host(name)!, w.number);
    // awaiting-operator ends the host's part in the wave: it counts as failed now.
    await condition(() => w.hosts.every((n) => !['pending', 'running'].includes(this.host(n)!.state)));
    w.state = 'done';
    w.endedAt = nowIso();
    w.failed = w.hosts.filter((n) => isFailedHost(this.host(n)!.state));
    this.countFailures();
  }

  /** Starts the host's child workflow and records how it ends (in the background). */
  private startHost(h: HostRecord, wave: number): void {
    Object.assign(h, { state: 'running', wave, attempts: h.attempts + 1, startedAt: nowIso(), runId: undefined, reason: undefined, endedAt: undefined });
    this.open++;
    const ended = (state: HostState, reason?: string) => {
      Object.assign(h, { state, reason, endedAt: nowIso() });
      this.countFailures();
    };
    void (async () => {
      try {
        const child = await startChild(upgradeHost, {
          workflowId: h.workflowId,
          args: [{ profile: this.profiles.get(h.name)!, autoApprove: true, requestedBy: `campaign ${this.input.name}` }],
          parentClosePolicy: ParentClosePolicy.ABANDON,
        });
        h.runId = child.firstExecutionRunId;
        const r = await child.result();
        ended(r.state === 'committed' || r.state === 'rolled-back' || r.state === 'rejected' ? r.state : 'failed', r.reason);
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          ended('busy', `another upgrade or rollback of ${h.name} is running (workflow ${h.workflowId}): not started twice; see ab-upgrade status ${h.name}`);
        } else ended(...outcomeOfFailure(err, finalStatusFrom(err)));
      } finally {
        this.open--;
      }
    })();
  }

  private countFailures(): void {
    const failed = this.failedHosts();
    this.status.failures = { ...this.status.failures, count: failed.length, hosts: failed.map((h) => h.name) };
  }

  private failedHosts(): HostRecord[] {
    return this.status.hosts.filter((h) => isFailedHost(h.state));
  }

  private host(name: string): HostRecord | undefined {
    return this.status.hosts.find((h) => h.name === name);
  }

  // -------------------------------------------------------------------------------------------
  // Messages

  private setPaused(paused: boolean, b: ByInput): void {
    if (this.status.state === 'halted' || this.status.state === 'done') {
      this.notice(`${paused ? 'pause' : 'resume'} from ${b?.by ?? '?'} ignored: the campaign is ${this.status.state}${this.status.state === 'halted' ? ' (use retry-failed)' : ''}`);
      return;
    }
    this.paused = paused;
    this.status.pauseRequested = paused;
    this.notice(`${paused ? 'paused' : 'resumed'} by ${b?.by ?? '?'}${b?.reason ? `: ${b.reason}` : ''}`);
  }

  /** The wave an approval would let start; throws (refusing the update) if there is none. */
  private waveToApprove(a: ApproveWaveInput): WaveRecord {
    checkBy(a);
    const w = this.status.waves.find((x) => x.number === this.status.currentWave);
    if (this.status.state !== 'awaiting-approval' || !w) throw new Error(`${this.input.name} is not awaiting a wave approval (state ${this.status.state})`);
    if (a.wave !== undefined && a.wave !== w.number) throw new Error(`wave ${w.number} awaits approval, not wave ${a.wave}`);
    return w;
  }

  private approve(a: ApproveWaveInput): ApproveWaveAck {
    const w = this.waveToApprove(a);
    w.approvedBy = a.by;
    this.notice(`wave ${w.number} approved by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
    return { wave: w.number, hosts: w.hosts };
  }

  /** The hosts retry-failed would run again; throws (refusing the update) if it cannot. */
  private retryable(b: ByInput): HostRecord[] {
    checkBy(b);
    if (this.status.state !== 'done' && this.status.state !== 'halted') throw new Error(`${this.input.name} is ${this.status.state}: retry-failed is for a done or halted campaign`);
    if (this.retryBy) throw new Error(`a retry was already asked for by ${this.retryBy.by}`);
    const hosts = this.retryCandidates();
    if (!hosts.length) throw new Error(`no failed host of ${this.input.name} can be retried now`);
    return hosts;
  }

  /** A host awaiting an operator is still in its own rollback: it can be retried once that ends. */
  private retryCandidates(): HostRecord[] {
    return this.failedHosts().filter((h) => h.state !== 'awaiting-operator');
  }

  private requestRetry(b: ByInput): RetryFailedAck {
    const hosts = this.retryable(b);
    this.retryBy = b;
    this.notice(`retry of ${hosts.map((h) => h.name).join(', ')} asked for by ${b.by}`);
    return { hosts: hosts.map((h) => h.name) };
  }

  /** The failed hosts, reset to pending, as new waves right after the last wave that ran. */
  private scheduleRetry(): void {
    const hosts = this.retryCandidates();
    this.retryBy = undefined;
    for (const h of hosts) h.state = 'pending';
    this.countFailures();
    const waves = this.status.waves;
    const ran = waves.filter((w) => w.state === 'done');
    const round = Math.max(...waves.map((w) => w.round)) + 1;
    const retry = planWaves(hosts.map((h) => h.name), this.input.waves, this.input.profiles.length).map(
      (names): WaveRecord => ({ number: 0, round, hosts: names, state: 'pending' }),
    );
    this.status.waves = [...ran, ...retry, ...waves.filter((w) => w.state !== 'done')].map((w, i) => ({ ...w, number: i + 1 }));
    this.status.reason = undefined;
    this.setState('running');
  }

  private viaSignal<T>(name: string, b: ByInput, act: () => T): void {
    try {
      act();
    } catch (err) {
      this.notice(`${name} signal from ${b?.by ?? '?'} ignored: ${describeError(err)}`);
    }
  }

  // -------------------------------------------------------------------------------------------

  private setState(state: CampaignState, waitingFor?: string): void {
    this.status.state = state;
    this.status.waitingFor = waitingFor;
  }

  private notice(text: string): void {
    this.status.notices = [...this.status.notices, `${nowIso()} ${text}`].slice(-MAX_NOTICES);
    log.info(text);
  }

  private async maybeContinueAsNew(): Promise<void> {
    const info = workflowInfo();
    const more = this.status.waves.some((w) => w.state !== 'done');
    if (!more || this.open > 0 || (info.historyLength < (this.input.historyLimit ?? DEFAULT_HISTORY_LIMIT) && !info.continueAsNewSuggested)) return;
    await condition(allHandlersFinished);
    this.status.continuedAsNew++;
    await continueAsNew<typeof fleetCampaign>({ ...this.input, carried: { status: this.status, paused: this.paused } });
  }
}

function checkBy(b: unknown): asserts b is ByInput {
  const by = (b as { by?: unknown } | undefined)?.by;
  if (typeof by !== 'string' || !by.trim() || by.length > 200) throw new Error('the payload must be {"by": "<who>", "reason"?: "..."}');
}

/** How a child that did not return a status ended: failed (or unreachable), cancelled, or terminated/timed out. */
function outcomeOfFailure(err: unknown, final: WorkflowStatus | undefined): [HostState, string] {
  if (isCancellation(err) || final?.state === 'cancelled') return ['cancelled', final?.reason ?? 'cancelled'];
  const reason = final?.reason ?? describeError(err);
  return [failureTypes(err).includes(UNREACHABLE_FAILURE_TYPE) ? 'unreachable' : 'failed', reason];
}

/** ApplicationFailure types along the cause chain (ChildWorkflowFailure → UpgradeFailed → ActivityFailure → ...). */
function failureTypes(err: unknown): string[] {
  const types: string[] = [];
  for (let e = err, depth = 0; e && depth < 10; e = (e as { cause?: unknown }).cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') types.push(type);
  }
  return types;
}
