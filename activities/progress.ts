// Heartbeats and cancellation that also work when an activity function is called directly
// (by `plan`, the lab or a test) instead of by a Temporal worker.
import { Context } from '@temporalio/activity';

function current(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/** Per running activity: when it last heartbeat, and with what details. */
const lastBeat = new WeakMap<Context, { at: number; details: unknown }>();

export function heartbeat(details?: unknown): void {
  const ctx = current();
  if (!ctx) return;
  lastBeat.set(ctx, { at: Date.now(), details });
  ctx.heartbeat(details);
}

/** Aborted when Temporal cancels the activity (delivered with a heartbeat); never otherwise. */
export function cancellationSignal(): AbortSignal | undefined {
  return current()?.cancellationSignal;
}

/** Heartbeats every `ms` while `work` runs, so long silent commands are not timed out. */
export async function withHeartbeats<T>(details: () => unknown, work: Promise<T>, ms = 5_000): Promise<T> {
  const timer = setInterval(() => heartbeat(details()), ms);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Heartbeats while `work` runs whenever nothing else did for `ms`, repeating the last details
 * sent (or the attempt's own, from an earlier attempt), so progress an activity reports itself
 * is never overwritten. A worker that dies stops these beats: the server then times the attempt
 * out after its heartbeat timeout instead of its much longer start-to-close timeout.
 */
export async function keepAlive<T>(work: () => Promise<T>, ms = 5_000): Promise<T> {
  const ctx = current();
  if (!ctx) return work();
  const beat = () => {
    const last = lastBeat.get(ctx);
    if (last && Date.now() - last.at < ms) return;
    heartbeat(last ? last.details : ctx.info.heartbeatDetails);
  };
  beat();
  const timer = setInterval(beat, ms);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
