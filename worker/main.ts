// The real worker: connects to Temporal, runs upgradeHost/rollbackHost with the SSH activities.
//   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS*, TEMPORAL_API_KEY: the server, namespace,
//                         TLS and authentication (default 127.0.0.1:7233, "default", plaintext;
//                         see lib/temporal-connection.ts, where the CLI's flags for them are listed too)
//   AB_UPGRADE_TASK_QUEUE (default "ab-upgrade")
//   AB_UPGRADE_CODEC_KEY  (unset: payloads in clear) key files of the payload codec, see lib/codec.ts
//   AB_UPGRADE_METRICS    (unset: off) <ip>:<port> of the Prometheus endpoint, see worker/metrics.ts
//   AB_UPGRADE_WORKFLOW_BUNDLE (unset: bundle at start) a prebuilt bundle, see worker/workflow-bundle.ts
//   AB_UPGRADE_MAX_CACHED_WORKFLOWS (unset: the SDK's size) the sticky cache, see worker/cache-size.ts
// SIGINT/SIGTERM: stop polling, give running activities a grace period, then exit.
// Workflows in flight are durable: another worker (or this one restarted) carries them on.
//
// Run it as `node bin/run-ts.js worker/main.ts` / `tsx worker/main.ts`, or `ab-upgrade worker`
// (which calls runWorker()).
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { codecDataConverter, configuredCodec } from '../lib/codec.js';
import { configuredConnection, connectionError, connectionOptions, type TemporalConnection } from '../lib/temporal-connection.js';
import { TASK_QUEUE } from '../lib/workflow-api.js';
import { maxCachedWorkflows } from './cache-size.js';
import { installMetricsRuntime, metricsAddress } from './metrics.js';
import { createWorker } from './worker.js';
import { loadWorkflowBundle, WORKFLOW_BUNDLE_ENV } from './workflow-bundle.js';

export interface RunWorkerOptions {
  /** Default: configuredConnection() (the CLI's flags, else the environment). */
  connection?: TemporalConnection;
  taskQueue?: string;
  /** The Prometheus scrape address (`--metrics`); default AB_UPGRADE_METRICS, else off. */
  metrics?: string;
  /** A prebuilt workflow bundle (`--workflow-bundle`); default AB_UPGRADE_WORKFLOW_BUNDLE, else bundled at start. */
  workflowBundle?: string;
  /** The sticky cache's size (`--max-cached-workflows`); default AB_UPGRADE_MAX_CACHED_WORKFLOWS, else the SDK's. */
  maxCachedWorkflows?: string;
}

/** Runs a worker until SIGINT/SIGTERM; resolves once it has shut down gracefully. */
export async function runWorker(o: RunWorkerOptions = {}): Promise<void> {
  // Certificate files are read here too: a bad one is reported before any connection attempt.
  const target = o.connection ?? configuredConnection();
  const taskQueue = o.taskQueue ?? process.env.AB_UPGRADE_TASK_QUEUE ?? TASK_QUEUE;
  // Read before connecting, so a bad key file is reported before anything else happens.
  const codec = configuredCodec();
  // Before connecting: the connection would create a Runtime without the endpoint.
  const metrics = metricsAddress(o.metrics);
  if (metrics) installMetricsRuntime(metrics);
  // Checked before connecting too: a stale bundle must never replay a history.
  const bundleFile = o.workflowBundle ?? (process.env[WORKFLOW_BUNDLE_ENV] || undefined);
  const workflowBundle = bundleFile ? loadWorkflowBundle(bundleFile, { encodedFailures: codec !== undefined }) : undefined;
  const cacheSize = maxCachedWorkflows(o.maxCachedWorkflows);

  const connection = await NativeConnection.connect(connectionOptions(target)).catch(async (e: unknown) => {
    throw await connectionError(target, e);
  });
  try {
    const worker = await createWorker({
      connection,
      namespace: target.namespace,
      taskQueue,
      activities: createActivities(),
      ...(workflowBundle ? { workflowBundle } : {}),
      options: {
        // How long running activities get to finish after SIGINT/SIGTERM before they are cancelled.
        shutdownGraceTime: '30s',
        ...(codec ? { dataConverter: codecDataConverter(codec) } : {}),
        ...(cacheSize !== undefined ? { maxCachedWorkflows: cacheSize } : {}),
      },
    });
    const payloads = codec ? `payloads encrypted with codec key ${codec.currentKeyId}` : 'payloads in clear';
    const scrape = metrics ? `, metrics on http://${metrics}/metrics` : '';
    const bundled = bundleFile ? `, workflows from ${bundleFile}` : '';
    const cache = `, cache ${worker.options.maxCachedWorkflows} workflows`;
    console.error(`ab-upgrade worker: ${target.summary}, task queue ${taskQueue}, ${payloads}${scrape}${bundled}${cache} (Ctrl-C stops)`);
    // Worker.create's Runtime already turns SIGINT/SIGTERM into worker.shutdown(); these
    // handlers only say so (and cover a Runtime configured without shutdown signals).
    const onSignal = (sig: NodeJS.Signals) => {
      console.error(`ab-upgrade worker: ${sig}, shutting down gracefully...`);
      if (worker.getState() === 'RUNNING') worker.shutdown();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await worker.run();
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    console.error('ab-upgrade worker: stopped');
  } finally {
    await connection.close();
  }
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  runWorker().catch((err: unknown) => {
    console.error('ab-upgrade worker:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
