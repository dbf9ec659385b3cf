// The worker's Prometheus endpoint: the Temporal SDK's own metrics (temporal_*) and ab-upgrade's
// (lib/metrics.ts), served by the SDK's exporter at http://<address>/metrics. Off unless an
// address is given: `ab-upgrade worker --metrics 127.0.0.1:9464` or AB_UPGRADE_METRICS.
import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { z } from 'zod';
import { histogramBucketOverrides } from '../lib/metrics.js';
import { flagOrEnv } from './flag-or-env.js';

export const METRICS_ENV = 'AB_UPGRADE_METRICS';
export const METRICS_FLAG = '--metrics';
/** The port documented for it (Prometheus' exporter convention), when the operator picks one. */
export const SUGGESTED_METRICS_ADDRESS = '127.0.0.1:9464';

export class MetricsConfigError extends Error {
  override name = 'MetricsConfigError';
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;

// The exporter binds a socket address, not a name: "localhost:9464" would fail inside the SDK.
const addressSchema = z
  .string()
  .trim()
  .regex(/^(.+):(\d{1,5})$/, 'must be <ip>:<port>, e.g. 127.0.0.1:9464 or [::1]:9464')
  .refine((a) => {
    const host = a.slice(0, a.lastIndexOf(':'));
    return IPV4.test(host) || IPV6.test(host);
  }, 'the host must be an IP address (127.0.0.1, 0.0.0.0, [::1]), not a name')
  .refine((a) => {
    const port = Number(a.slice(a.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'the port must be between 1 and 65535');

/**
 * The scrape address from the flag, else the variable; undefined (metrics off) when neither is
 * set. A bad value is refused with a message naming where it came from.
 */
export function metricsAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flagOrEnv(flag, env, { flag: METRICS_FLAG, env: METRICS_ENV }, addressSchema, MetricsConfigError);
}

/** Runtime options that serve Prometheus metrics at `bindAddress` (with our histograms' buckets). */
export function metricsRuntimeOptions(bindAddress: string): Pick<RuntimeOptions, 'telemetryOptions'> {
  return { telemetryOptions: { metrics: { prometheus: { bindAddress, histogramBucketOverrides: histogramBucketOverrides() } } } };
}

/**
 * Installs the process' Temporal Runtime with the metrics endpoint; call before anything connects
 * (the first connection creates a default Runtime, which has no endpoint).
 */
export function installMetricsRuntime(bindAddress: string): void {
  try {
    Runtime.install(metricsRuntimeOptions(bindAddress));
  } catch (e) {
    throw new MetricsConfigError(`metrics endpoint ${bindAddress}: ${(e as Error).message}`);
  }
}
