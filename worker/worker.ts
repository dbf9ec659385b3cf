// Worker construction shared by the real worker (worker/main.ts) and the workflow tests.
// The activities are injected: production passes createActivities() (SSH), tests pass a fake
// host — vi.mock cannot reach the workflow sandbox, the Worker is the seam.
import { fileURLToPath } from 'node:url';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { inputActivities } from '../activities/check-profile.js';
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
    // The Worker wants a plain object of functions; HostActivities is one. The input check runs
    // on every worker, whatever host activities it is given.
    activities: { ...inputActivities, ...o.activities } as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>,
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : { workflowsPath }),
    // A campaign wave runs one activity per host at a time, mostly waiting on SSH: the SDK's
    // default of 100 slots queues the rest of a 200-host wave (a 1000-host fleet at 20% a wave).
    // npm run bench:campaign (bench/results/campaign.json), the same 200-host wave run side by
    // side under the same load: activity schedule-to-start p99 14.9 s with 100 slots, 10.8 s with
    // 500, wall time alike (that machine was CPU-bound, load 27-29 on 2 cores).
    maxConcurrentActivityTaskExecutions: 500,
    // The hosts of a wave move through their phases nearly in step, so their workflow tasks come
    // in bursts of up to a wave: with the SDK's 40 slots and 10 pollers a 200-host wave waited
    // p99 0.6 s per workflow task, with 100 and 40 0.1 s (npm run bench:campaign, waves 1-4 of
    // 1000 hosts, bench/results/campaign-tuning.json). Autoscaled pollers did no better.
    maxConcurrentWorkflowTaskExecutions: 100,
    workflowTaskPollerBehavior: { type: 'simple-maximum', maximum: 40 },
    ...o.options,
  });
}
