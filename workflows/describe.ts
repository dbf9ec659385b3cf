// One-line descriptions for the timeline, notices and reasons: of an error, a failure's type,
// a health report, the inspected facts. Pure: no commands.
import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, TimeoutFailure } from '@temporalio/workflow';
import type { HealthReport, HostFacts } from '../lib/contract.js';

/** The real cause under ActivityFailure/ChildWorkflowFailure wrappers. */
function rootCause(err: unknown): unknown {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e;
}

/** One line for an error, unwrapping ActivityFailure/ChildWorkflowFailure to the real cause. */
export function describeError(err: unknown): string {
  const e = rootCause(err);
  if (e instanceof TimeoutFailure) return `timed out (${e.timeoutType ?? 'timeout'})`;
  if (e instanceof ApplicationFailure) return e.type && e.type !== 'Error' ? `${e.message} [${e.type}]` : e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The ApplicationFailure type under the wrappers (FailureTypes.NoPowerDriver, ...), if any. */
export function failureType(err: unknown): string | undefined {
  const e = rootCause(err);
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

export function summarizeHealth(h: HealthReport): string {
  const bad = h.checks.filter((c) => !c.ok);
  if (h.ok) return `healthy (${h.checks.length} checks)`;
  return `${bad.length} of ${h.checks.length} checks failed: ${bad.map((c) => `${c.name}: ${c.detail}`).join('; ')}`;
}

export function summarizeFacts(f: HostFacts): string {
  return `${f.hostname}: ${f.distro.prettyName}, running slot ${f.active.name} (${f.active.device}), spare ${f.spare.name} (${f.spare.device}), ${f.bootMode}`;
}
