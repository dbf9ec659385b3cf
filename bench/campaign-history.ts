// Figures the campaign benchmark reads from the server after a run: each workflow's history size
// (describe: the server's own byte count) and length, and how long tasks waited in their queue
// (schedule-to-start: a task's Started event time minus its Scheduled event time).
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';

export interface RunSize {
  workflowId: string;
  runId: string;
  events: number;
  bytes: number;
  /** The run's first and last event times (ms since the epoch). */
  firstEventMs: number;
  lastEventMs: number;
}

export interface Waits {
  /** Activity tasks, first attempts only (a retry's Started time includes its backoff). */
  activityMs: number[];
  workflowTaskMs: number[];
}

export interface HistoryFigures {
  runs: RunSize[];
  waits: Waits;
}

type Event = NonNullable<Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>['events']>[number];

const key = (id: unknown) => String(id);

function waitsOf(events: Event[], into: Waits): void {
  const scheduled = new Map<string, number>();
  for (const e of events) {
    const at = tsToMs(e.eventTime);
    if (e.activityTaskScheduledEventAttributes || e.workflowTaskScheduledEventAttributes) scheduled.set(key(e.eventId), at);
    const act = e.activityTaskStartedEventAttributes;
    if (act && (act.attempt ?? 1) === 1) {
      const from = scheduled.get(key(act.scheduledEventId));
      if (from !== undefined) into.activityMs.push(at - from);
    }
    const wft = e.workflowTaskStartedEventAttributes;
    if (wft) {
      const from = scheduled.get(key(wft.scheduledEventId));
      if (from !== undefined) into.workflowTaskMs.push(at - from);
    }
  }
}

/**
 * Sizes and queue waits of a workflow's runs, following continue-as-new from `runId` (default:
 * the latest run only).
 */
export async function historyFigures(client: Client, workflowId: string, runId?: string): Promise<HistoryFigures> {
  const out: HistoryFigures = { runs: [], waits: { activityMs: [], workflowTaskMs: [] } };
  for (let run = runId; ; ) {
    const handle = client.workflow.getHandle(workflowId, run);
    const [d, history] = await Promise.all([handle.describe(), handle.fetchHistory()]);
    const events = history.events ?? [];
    const firstEventMs = tsToMs(events[0]?.eventTime);
    const lastEventMs = tsToMs(events.at(-1)?.eventTime);
    out.runs.push({ workflowId, runId: d.runId, events: d.historyLength, bytes: d.historySize ?? NaN, firstEventMs, lastEventMs });
    waitsOf(events, out.waits);
    const next = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!runId || !next) return out;
    run = next;
  }
}

/** The figures of many workflows, `concurrency` at a time, merged. */
export async function fleetHistoryFigures(client: Client, workflowIds: string[], concurrency = 8): Promise<HistoryFigures> {
  const out: HistoryFigures = { runs: [], waits: { activityMs: [], workflowTaskMs: [] } };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < workflowIds.length) {
        const f = await historyFigures(client, workflowIds[next++]!);
        out.runs.push(...f.runs);
        out.waits.activityMs.push(...f.waits.activityMs);
        out.waits.workflowTaskMs.push(...f.waits.workflowTaskMs);
      }
    }),
  );
  return out;
}

/** The q-quantile (nearest rank) of `xs`, or null when empty. */
export function quantile(xs: number[], q: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}
