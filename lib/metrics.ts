// ab-upgrade's own Prometheus metrics: names, units and bucket boundaries. They are recorded
// through the Temporal SDK's metric meter (lib/metrics-workflow.ts), so the worker's one scrape
// endpoint (worker/metrics.ts) serves them next to the SDK's own temporal_* metrics.
// Pure data: imported by the workflows and by the worker.

export const METRICS = {
  /** Counter, tag `outcome`: a run ended in that state, or (awaiting-operator) started waiting for one. */
  outcomes: 'ab_upgrade_outcomes',
  /** Histogram (seconds, workflow time), tags `phase` and `outcome`: how long each timeline phase took. */
  phaseDuration: 'ab_upgrade_phase_duration_seconds',
  /** Histogram (seconds): reboot issued → healthy, as the users saw it, for each run that measured one. */
  downtime: 'ab_upgrade_downtime_seconds',
} as const;

export const METRIC_DESCRIPTIONS: Record<keyof typeof METRICS, string> = {
  outcomes: 'host workflow runs by outcome (awaiting-operator: counted when the run starts waiting for an operator)',
  phaseDuration: 'duration of each timeline phase of a host workflow, by phase and outcome',
  downtime: 'downtime of a reboot into a slot: reboot issued until the health checks passed',
};

/**
 * Bucket boundaries in seconds. Phases run from under a second (inspect) to hours (an install,
 * an approval wait); downtime is a reboot, a minute or two when all goes well.
 */
export const BUCKETS: Record<'phaseDuration' | 'downtime', number[]> = {
  phaseDuration: [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 86400],
  downtime: [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200],
};

/** The exporter's histogramBucketOverrides for our histograms (keyed by metric name). */
export function histogramBucketOverrides(): Record<string, number[]> {
  return { [METRICS.phaseDuration]: BUCKETS.phaseDuration, [METRICS.downtime]: BUCKETS.downtime };
}
