// The campaign benchmark's code path (bench/campaign-run.ts) with 20 simulated hosts, in-process
// on the test run's dev server: correctness only, never timing (the figures are the benchmark's).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FAILURE_SHARE, scriptFleet } from '../../bench/campaign-fleet.js';
import { CAMPAIGN_DEFAULTS, runCampaign } from '../../bench/campaign-run.js';
import { planWaves } from '../../lib/waves.js';
import { setupWorkflowEnv, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

const HOSTS = 20;
// A lab second is 5 ms: a committed host's script takes about 1 s.
const SCALE = 0.005;
const SEED = 7;

describe('campaign benchmark slice', () => {
  test('20 simulated hosts: every host ends as scripted, counts and waves match the campaign file, no history over 10 MB', async () => {
    const scripted = scriptFleet(HOSTS, SCALE, SEED);
    const expected: Record<string, number> = {};
    for (const h of scripted) expected[h.outcome] = (expected[h.outcome] ?? 0) + 1;
    // The slice covers every scripted ending, and the canary commits.
    expect(Object.keys(expected).sort()).toEqual(['committed', ...Object.keys(FAILURE_SHARE)].sort());
    expect(scripted[0]!.outcome).toBe('committed');
    const failing = HOSTS - expected.committed!;

    const f = await runCampaign(
      { client: env.client, connection: env.connection, workflowBundle: env.bundle, keepHostOutcomes: true },
      { hosts: HOSTS, scale: SCALE, seed: SEED, failureBudget: failing },
    );

    expect(f.state).toBe('done');
    expect(f.mismatches).toEqual([]);
    expect(f.hostOutcomes).toHaveLength(HOSTS);
    for (const h of f.hostOutcomes!) {
      expect(h.state, h.name).toBe(h.scripted);
      const slot = h.scripted === 'committed' ? 'b' : 'a';
      expect([h.running, h.defaultSlot], h.name).toEqual([slot, slot]);
    }
    expect(f.outcomes).toEqual(expected);
    expect(f.failures).toEqual({ count: failing, budget: failing });
    // The campaign file's waves [1, 5, "20%"]: 1, 5, 4, 4, 4, 2.
    expect(f.waves.map((w) => w.hosts)).toEqual(planWaves(scripted, [...CAMPAIGN_DEFAULTS.waves]).map((w) => w.length));
    expect(f.waves.map((w) => w.hosts)).toEqual([1, 5, 4, 4, 4, 2]);
    expect(f.largestHistory.bytes).toBeGreaterThan(0);
    expect(f.largestHistory.bytes).toBeLessThanOrEqual(10 * 1024 * 1024);
    // Every started host's history and each campaign run were read (the figures cover them all).
    expect(f.campaignRuns).toHaveLength(f.continuedAsNew + 1);
    expect(f.scheduleToStartMs.activity.n).toBeGreaterThan(HOSTS);
    // Each wave's time is split from its hosts' histories; a host's script is a lower bound of its
    // run (every phase sleeps its scripted time), so the median host's overhead is not negative.
    for (const w of f.waves) {
      const b = w.breakdown;
      expect(b, `wave ${w.number}`).toBeDefined();
      expect(b!.startLagS).toBeGreaterThanOrEqual(0);
      expect(b!.endLagS).toBeGreaterThanOrEqual(0);
      expect(b!.hostOverheadS.p50).toBeGreaterThanOrEqual(-0.01);
      expect(b!.hostOverheadS.max).toBeGreaterThanOrEqual(b!.hostOverheadS.p50);
    }
  }, 120_000);
});
