// Worker construction shared by the real worker (worker/main.ts) and the workflow tests.
// The activities are injected: production passes createActivities() (SSH), tests pass a fake
// host — vi.mock cannot reach the workflow sandbox, the Worker is the seam.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { HostActivities } from '../lib/contract.js';
import { TASK_QUEUE } from '../lib/workflow-api.js';

/** Path of the workflows' entry point, as .ts when running from source (tsx, vitest), else .js. */
export const workflowsPath = fileURLToPath(
  new URL(`../workflows/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);

export interface CreateWorkerOptions {
  connection: NativeConnection;
  /** Defaults to TASK_QUEUE ('ab-upgrade'). */
  taskQueue?: string;
  namespace?: string;
  activities: HostActivities;
  /** A prebuilt bundle (bundleWorkflowCode) — tests bundle once per file; else workflowsPath is bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Anything else Worker.create accepts (identity, heartbeat throttling, shutdown grace, ...). */
  options?: Partial<Omit<WorkerOptions, 'connection' | 'taskQueue' | 'namespace' | 'activities' | 'workflowBundle' | 'workflowsPath'>>;
}

export async function createWorker(o: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: o.connection,
    namespace: o.namespace ?? 'default',
    taskQueue: o.taskQueue ?? TASK_QUEUE,
    // The Worker wants a plain object of functions; HostActivities is one.
    activities: o.activities as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath }),
    ...o.options,
  });
}
