// Recording ab-upgrade's metrics (lib/metrics.ts) from inside a host workflow. The SDK's
// workflow meter sends values out through a sink and skips them while the workflow replays, so
// recording issues no command and a value is counted once, when its event first happens (a
// workflow task that fails and runs again may count it twice). Workflow time throughout.
import { metricMeter } from '@temporalio/workflow';
import type { PhaseRecord, WorkflowState } from './workflow-api.js';
import { METRIC_DESCRIPTIONS as D, METRICS } from './metrics.js';

/** Called once per run end, and when a run starts waiting for an operator. */
export function recordOutcome(outcome: WorkflowState): void {
  metricMeter.createCounter(METRICS.outcomes, undefined, D.outcomes).add(1, { outcome });
}

/** A phase that just ended (its record has endedAt and outcome). */
export function recordPhase(rec: PhaseRecord): void {
  if (!rec.endedAt) return;
  const seconds = Math.max(0, Date.parse(rec.endedAt) - Date.parse(rec.startedAt)) / 1000;
  metricMeter.createHistogram(METRICS.phaseDuration, 'float', 's', D.phaseDuration).record(seconds, { phase: rec.phase, outcome: rec.outcome ?? 'unknown' });
}

export function recordDowntime(downtimeMs: number): void {
  metricMeter.createHistogram(METRICS.downtime, 'float', 's', D.downtime).record(Math.max(0, downtimeMs) / 1000);
}
