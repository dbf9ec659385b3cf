// The worker's Prometheus endpoint (worker/metrics.ts): a real worker in a Runtime serving
// metrics on a free port, one upgradeHost with the fake host to committed, then a scrape over
// HTTP must show the SDK's own metrics and ours (lib/metrics.ts) with the run's values.
import { afterAll, beforeAll, expect, test } from 'vitest';
import { freePort } from '../../lib/free-port.js';
import { BUCKETS, METRICS } from '../../lib/metrics.js';
import { startOptions } from '../../lib/workflow-api.js';
import { metricsRuntimeOptions } from '../../worker/metrics.js';
import { upgradeHost } from '../../workflows/index.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
let scrapeUrl: string;
beforeAll(async () => {
  const address = `127.0.0.1:${await freePort()}`;
  scrapeUrl = `http://${address}/metrics`;
  env = await setupWorkflowEnv({ runtime: metricsRuntimeOptions(address) });
});
afterAll(async () => {
  await env?.close();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format's samples (no escapes in our label values). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

test('one committed upgrade: the SDK metrics and ab-upgrade outcome, phase and downtime metrics on one scrape', async () => {
  const fake = newFake();
  const profile = fakeProfile();
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, fake, taskQueue);
  let result;
  try {
    result = await worker.runUntil(
      env.client.workflow.execute(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, requestedBy: 'test' }] }),
    );
  } finally {
    fake.dispose();
  }
  expect(result.state).toBe('committed');

  // The SDK's metrics name the queue task_queue; the workflow meter's default tags, taskQueue.
  const ours = (s: Sample) => (s.labels.task_queue ?? s.labels.taskQueue) === taskQueue;
  const find = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && ours(s) && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  // Workflow metrics leave the sandbox with the activation that recorded them: poll briefly.
  const samples = await eventually(async () => {
    const res = await fetch(scrapeUrl);
    expect(res.status).toBe(200);
    const s = parseSamples(await res.text());
    return find(s, `${METRICS.downtime}_count`).length && find(s, 'temporal_workflow_completed').length ? s : undefined;
  }, 10_000);

  // The SDK's own.
  expect(find(samples, 'temporal_workflow_completed', { workflow_type: 'upgradeHost' }).map((s) => s.value)).toEqual([1]);
  expect(find(samples, 'temporal_activity_execution_latency_count', { activity_type: 'installRelease' })[0]?.value).toBe(1);

  // Outcomes: one committed, nothing else.
  const outcomes = find(samples, METRICS.outcomes);
  expect(outcomes.map((s) => [s.labels.outcome, s.value])).toEqual([['committed', 1]]);

  // One observation per phase of the timeline, with its outcome, in seconds.
  const phaseCounts = find(samples, `${METRICS.phaseDuration}_count`);
  const byPhase = Object.fromEntries(phaseCounts.map((s) => [`${s.labels.phase}/${s.labels.outcome}`, s.value]));
  const expected: Record<string, number> = {};
  for (const p of result.timeline) expected[`${p.phase}/${p.outcome}`] = (expected[`${p.phase}/${p.outcome}`] ?? 0) + 1;
  expect(byPhase).toEqual(expected);
  expect(Object.keys(byPhase)).toEqual(expect.arrayContaining(['installRelease/ok', 'awaitComeback/ok', 'commitSlot/ok', 'approval/skipped']));
  // Our buckets, not the exporter's defaults.
  const les = find(samples, `${METRICS.phaseDuration}_bucket`, { phase: 'inspect' }).map((s) => s.labels.le);
  expect(les).toEqual([...BUCKETS.phaseDuration.map(String), '+Inf']);
  const comebackSum = find(samples, `${METRICS.phaseDuration}_sum`, { phase: 'awaitComeback' })[0]!.value;
  const comeback = result.timeline.find((p) => p.phase === 'awaitComeback')!;
  expect(comebackSum).toBeCloseTo((Date.parse(comeback.endedAt!) - Date.parse(comeback.startedAt)) / 1000, 3);

  // Downtime: one observation, the run's own figure in seconds.
  expect(find(samples, `${METRICS.downtime}_count`).map((s) => s.value)).toEqual([1]);
  expect(find(samples, `${METRICS.downtime}_sum`)[0]!.value).toBeCloseTo(result.downtime!.downtimeMs / 1000, 3);
  expect(find(samples, `${METRICS.downtime}_bucket`).map((s) => s.labels.le)).toEqual([...BUCKETS.downtime.map(String), '+Inf']);
});
