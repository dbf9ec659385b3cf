// The worker's metrics address (worker/metrics.ts): flag over variable, off when neither is set,
// every refusal naming where the value came from; the runtime options carry our buckets.
import { describe, expect, test } from 'vitest';
import { BUCKETS, METRICS } from '../../lib/metrics.js';
import { METRICS_ENV, MetricsConfigError, metricsAddress, metricsRuntimeOptions } from '../../worker/metrics.js';

describe('metricsAddress', () => {
  test('off by default; the flag wins over the variable; an empty variable is off', () => {
    expect(metricsAddress(undefined, {})).toBeUndefined();
    expect(metricsAddress(undefined, { [METRICS_ENV]: '' })).toBeUndefined();
    expect(metricsAddress(undefined, { [METRICS_ENV]: '127.0.0.1:9464' })).toBe('127.0.0.1:9464');
    expect(metricsAddress('0.0.0.0:9100', { [METRICS_ENV]: '127.0.0.1:9464' })).toBe('0.0.0.0:9100');
    expect(metricsAddress('[::1]:9464', {})).toBe('[::1]:9464');
  });

  test.each([
    ['localhost:9464', /--metrics: the host must be an IP address/],
    ['9464', /--metrics: must be <ip>:<port>/],
    ['127.0.0.1:0', /--metrics: the port must be between 1 and 65535/],
    ['127.0.0.1:70000', /--metrics: the port must be between 1 and 65535/],
    ['300.0.0.1:9464', /--metrics: the host must be an IP address/],
    ['', /--metrics: must be <ip>:<port>/],
  ])('the flag %j is refused', (value, message) => {
    expect(() => metricsAddress(value, {})).toThrow(MetricsConfigError);
    expect(() => metricsAddress(value, {})).toThrow(message);
  });

  test('a bad variable is refused naming the variable', () => {
    expect(() => metricsAddress(undefined, { [METRICS_ENV]: 'metrics.example:9464' })).toThrow(`${METRICS_ENV}: the host must be an IP address`);
  });
});

test('the runtime options serve Prometheus at the address with our histogram buckets', () => {
  const o = metricsRuntimeOptions('127.0.0.1:9464');
  expect(o.telemetryOptions?.metrics).toEqual({
    prometheus: {
      bindAddress: '127.0.0.1:9464',
      histogramBucketOverrides: { [METRICS.phaseDuration]: BUCKETS.phaseDuration, [METRICS.downtime]: BUCKETS.downtime },
    },
  });
});
