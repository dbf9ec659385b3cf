// `campaign report --html` end to end: a real campaign on the dev server over the fake fleet (one
// host rolls back, one waits for an operator's hand reset, a wave is approved by an operator whose
// name and reason are hostile HTML), the
// report read back from Temporal by the CLI's code, the page rendered by headless Chromium: the
// screenshot must not be blank and the DOM must name every host, with the hostile text as text.
// Chromium is required (CI installs it with scripts/setup.sh): without it this test fails.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { approveWaveUpdate, campaignStartOptions, campaignStatusQuery } from '../../lib/campaign-api.js';
import { renderReportHtml } from '../../lib/report-html.js';
import { campaignReportFrom, hostReportFrom } from '../../client/report.js';
import { hostWorkflowId } from '../../lib/profile.js';
import { hostRecoveredSignal, statusQuery } from '../../lib/workflow-api.js';
import { fleetCampaign } from '../../workflows/index.js';
import { FakeFleet } from '../helpers/fake-fleet.js';
import { pixelStats, readPng } from '../helpers/png.js';
import { eventually, fakeWorker, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

const CHROMIUM = '/usr/bin/chromium';
const run = promisify(execFile);

let env: WorkflowEnv;
let dir: string;
beforeAll(async () => {
  env = await setupWorkflowEnv();
  dir = await mkdtemp(join(tmpdir(), 'ab-report-'));
});
afterAll(async () => {
  await env?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Headless Chromium on a fresh profile, no network services: one run takes the screenshot and prints the parsed DOM. */
async function chromium(page: string): Promise<{ png: string; dom: string }> {
  const profile = await mkdtemp(join(dir, 'profile-'));
  const png = `${page}.png`;
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--window-size=1200,900',
    `--screenshot=${png}`, '--dump-dom', `file://${page}`,
  ];
  const { stdout } = await run(CHROMIUM, args, { timeout: 60_000, maxBuffer: 32 << 20 });
  return { png, dom: stdout };
}

const BY = '<script>alert("by")</script>';
const REASON = '"><img src=x onerror=alert(1)> canary & fine';

test('a campaign report renders in headless Chromium: not blank, every host named, hostile text stays text', async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (scripts/setup.sh installs it)`).toBe(true);

  const fleet = new FakeFleet();
  const [canary, flaky, fine] = [fleet.add().profile, fleet.add({ healthFailsOn: ['b'] }).profile, fleet.add().profile];
  const { profile: stuck, fake: stuckFake } = fleet.add({ hangOnBootInto: ['b'] }, { power: { driver: 'none' } });
  const taskQueue = uniqueName('tq');
  const name = uniqueName('campaign');
  const worker = await fakeWorker(env, fleet, taskQueue);
  try {
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(fleetCampaign, {
        ...campaignStartOptions(name, taskQueue),
        args: [{ name, profiles: fleet.profiles, waves: [1, 3], failureBudget: 2, approveEachWave: true, retryWithinMs: 500, requestedBy: 'tester' }],
      });
      await eventually(async () => (await handle.query(campaignStatusQuery)).state === 'awaiting-approval');
      await handle.executeUpdate(approveWaveUpdate, { args: [{ by: BY, wave: 2, reason: REASON }] });
      const stuckHandle = env.client.workflow.getHandle(hostWorkflowId(stuck.name));
      await eventually(async () => (await stuckHandle.query(statusQuery)).state === 'awaiting-operator');
      stuckFake.operatorReset();
      await stuckHandle.signal(hostRecoveredSignal, { by: 'erin', note: 'power-cycled at the rack' });
      expect((await handle.result()).failures.hosts.sort()).toEqual([flaky.name, stuck.name].sort());
    });
  } finally {
    fleet.dispose();
  }

  // Read back the way the CLI does, from the histories and statuses on the server.
  const model = await campaignReportFrom(env.client, name);
  expect(model.runs.map((r) => [r.host, r.wave, r.state]).sort()).toEqual(
    [[canary.name, 1, 'committed'], [flaky.name, 2, 'rolled-back'], [fine.name, 2, 'committed'], [stuck.name, 2, 'rolled-back']].sort(),
  );
  expect(model.approvals).toContainEqual(expect.objectContaining({ who: 'erin', decision: 'recovered', reason: 'power-cycled at the rack', identity: expect.stringMatching(/^\d+@/) }));
  expect(model.approvals).toContainEqual(expect.objectContaining({ who: BY, reason: REASON, decision: 'approved', identity: expect.stringMatching(/^\d+@/) }));
  expect(model.runs.find((r) => r.host === flaky.name)!.downtime?.source).toBe('timeline');
  expect(model.runs.find((r) => r.host === fine.name)!.downtime?.source).toBe('measured');
  const page = join(dir, 'campaign.html');
  await writeFile(page, renderReportHtml(model));

  const { png, dom } = await chromium(page);
  const img = readPng(await readFile(png));
  const stats = pixelStats(img); // a blank page: 1 colour, 0 non-white (test/unit/report-png.test.ts)
  expect([img.width, img.height]).toEqual([1200, 900]);
  expect(stats.colours, `distinct colours ${stats.colours}`).toBeGreaterThan(30);
  expect(stats.nonWhite / stats.pixels, `non-white share ${stats.nonWhite}/${stats.pixels}`).toBeGreaterThan(0.03);

  for (const h of [canary, flaky, fine, stuck]) expect(dom).toContain(h.name);
  expect(dom).toMatch(/<svg class="timeline"/);
  // The hostile name and reason were parsed as text: no element came of them.
  expect(dom).not.toMatch(/<script|<img/i);
  expect(dom).toContain('&lt;script&gt;alert("by")&lt;/script&gt;');
  expect(dom).toContain('"&gt;&lt;img src=x onerror=alert(1)&gt; canary &amp; fine');
  expect(dom).toContain('health checks failed on slot b');
  expect(dom).toContain('<code>rollback.awaitOperator</code>');

  // The host report of the rolled-back host, from its own history.
  const host = await hostReportFrom(env.client, flaky.name);
  expect(host.state).toBe('rolled-back');
  expect(host.runs[0]!.phases.some((p) => p.phase === 'rollback.checkHealth')).toBe(true);
});
