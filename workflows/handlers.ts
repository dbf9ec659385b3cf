// The messages a host workflow answers: the `status` query, approve/reject (as updates, whose
// validator refuses them outside the approval wait, and as signals, ignored with a notice there)
// and the operator's `hostRecovered` signal. What they bring is read through the returned Inbox.
import { condition, setHandler } from '@temporalio/workflow';
import {
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
} from '../lib/workflow-api.js';
import { describeError } from './describe.js';
import { nowIso, type HostRun } from './host-run.js';

export type Recovered = HostRecoveredInput & { at: string };

/**
 * Registers every handler; call it first thing in the workflow, before anything can block, so
 * no message is lost.
 */
export function setHandlers(run: HostRun): Inbox {
  return new Inbox(run);
}

export class Inbox {
  private decision?: Decision;
  private recovered?: Recovered;

  constructor(private readonly run: HostRun) {
    setHandler(statusQuery, () => run.status);
    setHandler(approveUpdate, (d) => this.decide(true, d, 'update'), { validator: (d) => this.validateDecisionNow(d) });
    setHandler(rejectUpdate, (d) => this.decide(false, d, 'update'), { validator: (d) => this.validateDecisionNow(d) });
    setHandler(approveSignal, (d) => this.decideBySignal(true, d));
    setHandler(rejectSignal, (d) => this.decideBySignal(false, d));
    setHandler(hostRecoveredSignal, (r) => {
      if (run.status.state !== 'awaiting-operator') {
        run.notice(`hostRecovered from ${r?.by ?? '?'} ignored: the workflow is ${run.status.state}, not awaiting the operator`);
        return;
      }
      if (!r || typeof r.by !== 'string' || !r.by.trim()) {
        run.notice('hostRecovered ignored: the payload must be {"by": "<who>", "note"?: "..."}');
        return;
      }
      this.recovered = { by: r.by, note: typeof r.note === 'string' ? r.note : undefined, at: nowIso() };
    });
  }

  /** Waits up to `timeoutMs` for approve or reject; undefined when none came in time. */
  async awaitDecision(timeoutMs: number): Promise<Decision | undefined> {
    const decided = await condition(() => this.decision !== undefined, timeoutMs);
    return decided ? this.decision : undefined;
  }

  /** Records a decision no message made (autoApprove, timeout): a later approve or reject is refused. */
  settle(d: Decision): Decision {
    this.decision = d;
    return d;
  }

  /** Forgets any earlier word from the operator, then waits for a `hostRecovered` signal. */
  async awaitRecovered(): Promise<Recovered> {
    this.recovered = undefined;
    await condition(() => this.recovered !== undefined);
    return this.recovered!;
  }

  private validateDecisionNow(d: unknown): void {
    validateDecision(d);
    const { status } = this.run;
    if (status.state !== 'awaiting-approval') {
      throw new Error(`${status.host} is not awaiting approval (state ${status.state}, phase ${status.phase})`);
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
      this.run.notice(`${what} signal from ${(d as { by?: unknown })?.by ?? '?'} ignored: ${describeError(err)}`);
      return;
    }
    this.decide(approved, d, 'signal');
  }
}

function validateDecision(d: unknown): asserts d is DecisionInput {
  if (!d || typeof d !== 'object') throw new Error('payload must be an object {"by": "...", "reason"?: "..."}');
  const { by, reason } = d as Record<string, unknown>;
  if (typeof by !== 'string' || by.trim() === '' || by.length > 200) throw new Error('"by" must name who decides (1-200 chars)');
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > 2000)) {
    throw new Error('"reason" must be a string of at most 2000 chars');
  }
}
