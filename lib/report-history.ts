// What a report needs from one workflow history: how the run ended (with the status it returned
// or carried in its UpgradeFailed failure), the operators' messages (updates and signals, with
// the Temporal client identity that sent each) and, for a campaign, its child runs and their
// results. Pure: takes the history as `fetchHistory()` gives it (or a recorded one through
// `History.fromObject`), its payloads already through the client's codecs.
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { UPGRADE_FAILED } from './workflow-api.js';

type History = temporal.api.history.v1.IHistory;
type Failure = temporal.api.failure.v1.IFailure;
type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;

export type CloseKind = 'open' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out' | 'continued-as-new';

/**
 * An update the workflow accepted, a signal it received (a signal may still have been ignored),
 * or a cancel request (named 'cancel', no input).
 */
export interface OperatorMessage {
  name: string;
  via: 'update' | 'signal' | 'cancel';
  /** The first argument, decoded (e.g. {"by": "alice", "reason": "..."}); not yet validated. */
  input: unknown;
  /** The sending client's identity as Temporal recorded it (by default pid@hostname). */
  identity?: string;
  /** Epoch ms of the event. */
  at: number;
}

/** How a run ended and what it left, as its history (or its parent's) records it. */
interface RunEnd {
  startedAt: number;
  closedAt?: number;
  close: CloseKind;
  /** Its result, or the status its UpgradeFailed failure carries; not yet validated. */
  result?: unknown;
  /** The failure's message, when it failed without a status. */
  failure?: string;
}

export interface ChildRunFacts extends RunEnd {
  workflowId: string;
  runId: string;
  workflowType: string;
}

export interface HistoryFacts extends RunEnd {
  workflowType: string;
  /** The run this one continued (continue-as-new), if any: its history holds the earlier part. */
  continuedFromRunId?: string;
  messages: OperatorMessage[];
  children: ChildRunFacts[];
}

export type FromPayload = (p: Payload) => unknown;

/** Epoch ms of a protobuf timestamp (seconds may be a Long, a string or a number). */
export function epochMs(t: Timestamp): number {
  if (!t) return NaN;
  return Number(String(t.seconds ?? 0)) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

export function readHistory(history: History, fromPayload: FromPayload = (p) => defaultPayloadConverter.fromPayload(p)): HistoryFacts {
  const events = history.events ?? [];
  const first = events[0]?.workflowExecutionStartedEventAttributes;
  if (!first) throw new Error('history: the first event is not WorkflowExecutionStarted (an empty or truncated history)');
  const decode = (payloads: Payload[] | null | undefined): unknown => {
    const p = payloads?.[0];
    if (!p) return undefined;
    try {
      return fromPayload(p);
    } catch (e) {
      // An encrypted payload the client has no key for, or an unknown encoding.
      return { undecodable: (e as Error).message };
    }
  };
  const facts: HistoryFacts = {
    workflowType: first.workflowType?.name ?? '?',
    startedAt: epochMs(events[0]!.eventTime),
    close: 'open',
    ...(first.continuedExecutionRunId ? { continuedFromRunId: first.continuedExecutionRunId } : {}),
    messages: [],
    children: [],
  };
  const children = new Map<string, ChildRunFacts>();
  const childOf = (exec: { workflowId?: string | null; runId?: string | null } | null | undefined) => children.get(exec?.runId ?? '');
  const closeChild = (exec: Parameters<typeof childOf>[0], at: number, close: CloseKind, extra: Partial<ChildRunFacts> = {}) => {
    const c = childOf(exec);
    if (c) Object.assign(c, { closedAt: at, close, ...extra });
  };
  const closeRun = (at: number, close: CloseKind, extra: Partial<HistoryFacts> = {}) => Object.assign(facts, { closedAt: at, close, ...extra });

  for (const e of events) {
    const at = epochMs(e.eventTime);
    if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const req = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      facts.messages.push({
        name: req?.input?.name ?? '?',
        via: 'update',
        input: decode(req?.input?.args?.payloads as Payload[]),
        ...(req?.meta?.identity ? { identity: req.meta.identity } : {}),
        at,
      });
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const s = e.workflowExecutionSignaledEventAttributes;
      facts.messages.push({ name: s.signalName ?? '?', via: 'signal', input: decode(s.input?.payloads as Payload[]), ...(s.identity ? { identity: s.identity } : {}), at });
    } else if (e.workflowExecutionCancelRequestedEventAttributes) {
      const r = e.workflowExecutionCancelRequestedEventAttributes;
      facts.messages.push({ name: 'cancel', via: 'cancel', input: r.cause ? { cause: r.cause } : undefined, ...(r.identity ? { identity: r.identity } : {}), at });
    } else if (e.childWorkflowExecutionStartedEventAttributes) {
      const s = e.childWorkflowExecutionStartedEventAttributes;
      const workflowId = s.workflowExecution?.workflowId ?? '?';
      const runId = s.workflowExecution?.runId ?? '?';
      const child: ChildRunFacts = { workflowId, runId, workflowType: s.workflowType?.name ?? '?', startedAt: at, close: 'open' };
      children.set(runId, child);
      facts.children.push(child);
    } else if (e.childWorkflowExecutionCompletedEventAttributes) {
      const c = e.childWorkflowExecutionCompletedEventAttributes;
      closeChild(c.workflowExecution, at, 'completed', { result: decode(c.result?.payloads as Payload[]) });
    } else if (e.childWorkflowExecutionFailedEventAttributes) {
      const c = e.childWorkflowExecutionFailedEventAttributes;
      closeChild(c.workflowExecution, at, 'failed', failureFacts(c.failure, decode));
    } else if (e.childWorkflowExecutionCanceledEventAttributes) {
      closeChild(e.childWorkflowExecutionCanceledEventAttributes.workflowExecution, at, 'cancelled');
    } else if (e.childWorkflowExecutionTerminatedEventAttributes) {
      closeChild(e.childWorkflowExecutionTerminatedEventAttributes.workflowExecution, at, 'terminated');
    } else if (e.childWorkflowExecutionTimedOutEventAttributes) {
      closeChild(e.childWorkflowExecutionTimedOutEventAttributes.workflowExecution, at, 'timed-out');
    } else if (e.workflowExecutionCompletedEventAttributes) {
      closeRun(at, 'completed', { result: decode(e.workflowExecutionCompletedEventAttributes.result?.payloads as Payload[]) });
    } else if (e.workflowExecutionFailedEventAttributes) {
      closeRun(at, 'failed', failureFacts(e.workflowExecutionFailedEventAttributes.failure, decode));
    } else if (e.workflowExecutionCanceledEventAttributes) {
      closeRun(at, 'cancelled');
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      closeRun(at, 'terminated', { failure: `terminated${e.workflowExecutionTerminatedEventAttributes.reason ? `: ${e.workflowExecutionTerminatedEventAttributes.reason}` : ''}` });
    } else if (e.workflowExecutionTimedOutEventAttributes) {
      closeRun(at, 'timed-out', { failure: 'the workflow run timed out' });
    } else if (e.workflowExecutionContinuedAsNewEventAttributes) {
      closeRun(at, 'continued-as-new');
    }
  }
  return facts;
}

/** The status an UpgradeFailed failure carries (anywhere on its cause chain), else the failure's message. */
function failureFacts(f: Failure | null | undefined, decode: (p: Payload[] | null | undefined) => unknown): { result?: unknown; failure?: string } {
  for (let e = f, depth = 0; e && depth < 10; e = e.cause, depth++) {
    if (e.applicationFailureInfo?.type === UPGRADE_FAILED) {
      const status = decode(e.applicationFailureInfo.details?.payloads as Payload[]);
      if (status !== undefined) return { result: status, failure: e.message ?? undefined };
    }
  }
  return { failure: f?.message || 'failed' };
}
