// The real worker: connects to Temporal, runs upgradeHost/rollbackHost with the SSH activities.
//   TEMPORAL_ADDRESS   (default 127.0.0.1:7233)
//   TEMPORAL_NAMESPACE (default "default")
//   AB_UPGRADE_TASK_QUEUE (default "ab-upgrade")
// SIGINT/SIGTERM: stop polling, let running activities finish (grace period), then exit.
// Workflows in flight are durable: another worker (or this one restarted) carries them on.
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { TASK_QUEUE } from '../lib/workflow-api.js';
import { createWorker } from './worker.js';

async function main(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
  const taskQueue = process.env.AB_UPGRADE_TASK_QUEUE ?? TASK_QUEUE;

  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await createWorker({
      connection,
      namespace,
      taskQueue,
      activities: createActivities(),
      options: {
        // Worker.create's Runtime already turns SIGINT/SIGTERM into worker.shutdown(); this is
        // how long running activities get to finish before they are cancelled.
        shutdownGraceTime: '30s',
      },
    });
    console.error(`ab-upgrade worker: ${address} namespace ${namespace} task queue ${taskQueue} (Ctrl-C stops)`);
    let stopping = false;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (!stopping) console.error(`ab-upgrade worker: ${sig}, shutting down gracefully...`);
        stopping = true;
        if (worker.getState() === 'RUNNING') worker.shutdown();
      });
    }
    await worker.run();
    console.error('ab-upgrade worker: stopped');
  } finally {
    await connection.close();
  }
}

main().catch((err: unknown) => {
  console.error('ab-upgrade worker:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
