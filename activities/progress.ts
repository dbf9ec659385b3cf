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

export function heartbeat(details?: unknown): void {
  current()?.heartbeat(details);
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
