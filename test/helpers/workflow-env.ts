// Test-side helpers for the workflow tests: connect to the run's dev server (started by the
// globalSetup in ./temporal.ts), bundle the workflows once per file, make fake-host profiles and
// workers with a unique task queue per test. Closing the environment runs the secret scan
// (./secret-scan.ts) over the file's workflow histories and worker log.
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, bundleWorkflowCode, type RuntimeOptions, type Worker, type WorkflowBundle } from '@temporalio/worker';
import { inject } from 'vitest';
import { createWorker, workflowsPath } from '../../worker/worker.js';
import { FakeHost, type FakeHostScript } from './fake-host.js';
export { fakeProfile, uniqueName } from './fake-profile.js';
import { clearSecrets, RecordingLogger, scanForSecrets, type ScanReport, type WorkerLog } from './secret-scan.js';

let workerLog: RecordingLogger | undefined;
/**
 * Installs the Runtime once per process: logs at ERROR (TEMPORAL_TEST_LOG), every entry recorded
 * for the secret scan; `telemetry` adds e.g. a metrics endpoint (worker/metrics.ts).
 */
function quietRuntime(telemetry: Pick<RuntimeOptions, 'telemetryOptions'> = {}): void {
  if (workerLog) return;
  workerLog = new RecordingLogger(new DefaultLogger((process.env.TEMPORAL_TEST_LOG as 'WARN' | undefined) ?? 'ERROR'));
  try {
    Runtime.install({ logger: workerLog, ...telemetry });
  } catch {
    // already installed in this process
  }
}

export interface WorkflowEnv {
  address: string;
  /** Encodes and decodes with `dataConverter` when one was given. */
  client: Client;
  connection: NativeConnection;
  bundle: WorkflowBundle;
  /** The data converter of this file's client and workers (undefined: the SDK's default). */
  dataConverter?: DataConverter;
  /** The secret scan of everything since setup: histories (decrypted with the client's codec) and the worker logs. */
  scanSecrets(): Promise<ScanReport>;
  /** Adds a worker process's output (stdout and stderr) to the secret scan. */
  addWorkerLog(log: WorkerLog): void;
  /** Runs the secret scan (throws on a finding), then disconnects. */
  close(): Promise<void>;
}

/**
 * Call in beforeAll: connects and bundles the workflows (once per file). With a data converter
 * (e.g. lib/codec.ts's), the client and fakeWorker's workers use it and the bundle gets its
 * failure converter.
 */
export async function setupWorkflowEnv(o: { dataConverter?: DataConverter; runtime?: Pick<RuntimeOptions, 'telemetryOptions'> } = {}): Promise<WorkflowEnv> {
  quietRuntime(o.runtime);
  const since = new Date();
  const address = inject('temporalAddress') ?? process.env.TEMPORAL_TEST_ADDRESS;
  if (!address) throw new Error('no Temporal server: run through vitest.config.ts (globalSetup test/helpers/temporal.ts)');
  const { dataConverter } = o;
  const [clientConnection, connection, bundle] = await Promise.all([
    Connection.connect({ address }),
    NativeConnection.connect({ address }),
    bundleWorkflowCode({
      workflowsPath,
      logger: new DefaultLogger('ERROR'),
      ...(dataConverter?.failureConverterPath ? { failureConverterPath: dataConverter.failureConverterPath } : {}),
      ...(dataConverter?.payloadConverterPath ? { payloadConverterPath: dataConverter.payloadConverterPath } : {}),
    }),
  ]);
  const client = new Client({ connection: clientConnection, namespace: 'default', ...(dataConverter ? { dataConverter } : {}) });
  const processLogs: WorkerLog[] = [];
  const scanSecrets = () => scanForSecrets(client, since, workerLog?.lines ?? [], processLogs);
  return {
    address,
    client,
    connection,
    bundle,
    ...(dataConverter ? { dataConverter } : {}),
    scanSecrets,
    addWorkerLog: (log) => void processLogs.push(log),
    async close() {
      try {
        const { findings } = await scanSecrets();
        if (findings.length) throw new Error(`secret scan: ${findings.length} finding(s):\n${findings.join('\n')}`);
      } finally {
        clearSecrets();
        workerLog?.lines.splice(0);
        await clientConnection.close();
        await connection.close();
      }
    },
  };
}

/** A worker for `fake` on its own task queue, tuned so cancellation reaches activities fast. */
export async function fakeWorker(env: WorkflowEnv, fake: Pick<FakeHost, 'activities'>, taskQueue: string, identity?: string): Promise<Worker> {
  return createWorker({
    connection: env.connection,
    taskQueue,
    activities: fake.activities(),
    workflowBundle: env.bundle,
    options: {
      ...(identity ? { identity } : {}),
      ...(env.dataConverter ? { dataConverter: env.dataConverter } : {}),
      // Heartbeats (and with them cancellation requests) go out at most every 200 ms.
      maxHeartbeatThrottleInterval: '200ms',
      defaultHeartbeatThrottleInterval: '200ms',
      shutdownGraceTime: '1s',
      stickyQueueScheduleToStartTimeout: '2s',
    },
  });
}

export function newFake(script?: FakeHostScript): FakeHost {
  return new FakeHost(script);
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
