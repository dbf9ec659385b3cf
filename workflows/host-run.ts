// One run of a host workflow as the operator sees it: the status the `status` query answers, its
// timeline of phases, the state (running, awaiting-*, and how it ended) and the notices.
//
// Every step of upgradeHost and rollbackHost runs as a named phase, so that a later change can
// be gated with `patched('<phase>-v2')` around exactly the phase it touches (none exists yet).
import { CancellationScope, getExternalWorkflowHandle, isCancellation, log, workflowInfo } from '@temporalio/workflow';
import { hostStateSignal } from '../lib/campaign-api.js';
import type {
  PhaseName,
  PhaseOutcome,
  PhaseRecord,
  UpgradeInput,
  WorkflowState,
  WorkflowStatus,
  WorkflowType,
} from '../lib/workflow-api.js';
import { recordDowntime, recordOutcome, recordPhase } from '../lib/metrics-workflow.js';
import { describeError } from './describe.js';

export const nowIso = (): string => new Date().toISOString();

export class HostRun {
  readonly status: WorkflowStatus;

  constructor(workflowType: WorkflowType, input: UpgradeInput) {
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
  }

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

  /** Runs a phase whose failure must not fail the workflow; records it and returns undefined. */
  async bestEffort<T>(name: PhaseName, fn: () => Promise<T>, describe?: (r: T) => string | undefined): Promise<T | undefined> {
    try {
      return await this.phase(name, fn, describe);
    } catch (err) {
      if (isCancellation(err) && CancellationScope.current().consideredCancelled) throw err;
      this.notice(`${name} failed (best effort, ignored): ${describeError(err)}`);
      return undefined;
    }
  }

  /** Starts a phase record by hand (for a phase that waits rather than calls). */
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
    recordPhase(rec);
  }

  notice(text: string): void {
    this.status.notices.push(`${nowIso()} ${text}`);
    log.warn(text);
  }

  /** Running, or waiting for a human (`waitingFor` says exactly what to do). */
  setState(state: WorkflowState, waitingFor?: string): void {
    const changed = this.status.state !== state;
    this.status.state = state;
    this.status.waitingFor = waitingFor;
    if (changed && state === 'awaiting-operator') recordOutcome(state);
    if (changed) this.reportToParent();
  }

  /** The run's ending: its final state and why. */
  finish(state: WorkflowState, reason?: string): WorkflowStatus {
    this.status.state = state;
    this.status.waitingFor = undefined;
    if (reason !== undefined) this.status.reason = reason;
    this.status.phase = 'done';
    this.status.endedAt = nowIso();
    recordOutcome(state);
    if (this.status.downtime) recordDowntime(this.status.downtime.downtimeMs);
    return this.status;
  }

  get ended(): boolean {
    return this.status.endedAt !== undefined;
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
}
