// One campaign of the campaign benchmark: a simulated fleet (./campaign-fleet.ts) behind one
// worker made by worker/worker.ts, the campaign file loaded by client/campaign-file.ts and started
// as `ab-upgrade campaign start` starts it, each wave approved as soon as it waits for approval
// (the operator), then the figures read back from the server. bench/campaign.ts runs it in a
// child process per fleet size (so each worker's peak RSS is its own); the workflow test
// test/workflow/campaign-scale.test.ts runs it in-process with a small fleet.
//
//   node bin/run-ts.js bench/campaign-run.ts '<json RunArgs>'   (prints one JSON line: RunFigures)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type WorkerOptions } from '@temporalio/worker';
import { loadCampaign } from '../client/campaign-file.js';
import { startCampaign } from '../client/campaign.js';
import { approveWaveUpdate, campaignStatusQuery, campaignWorkflowId, type CampaignStatus } from '../lib/campaign-api.js';
import { planWaves } from '../lib/waves.js';
import { hostWorkflowId } from '../lib/profile.js';
import { createWorker } from '../worker/worker.js';
import { loadWorkflowBundle } from '../worker/workflow-bundle.js';
import { SimulatedFleet, scriptFleet, writeCampaignFiles, type Outcome } from './campaign-fleet.js';
import { fleetHistoryFigures, historyFigures, quantile, type RunSize } from './campaign-history.js';

/** A real campaign file's settings (examples/campaign.example.yaml): a canary, 5 hosts, then 20% per wave. */
export const CAMPAIGN_DEFAULTS = { waves: [1, 5, '20%'], failureBudget: '5%', approveEachWave: true } as const;

export interface RunArgs {
  hosts: number;
  /** Lab seconds → simulated seconds. */
  scale: number;
  seed: number;
  /** Worker options laid over worker/worker.ts's (tuning experiments). */
  workerOptions?: Partial<WorkerOptions>;
  waves?: (number | string)[];
  failureBudget?: number | string;
  approveEachWave?: boolean;
  /**
   * Stop at the approval gate after this many waves (cancelling the campaign, which then has no
   * host running) and report those waves only; needs approveEachWave.
   */
  stopAfterWave?: number;
  /** How often the benchmark queries the campaign's status (default 250 ms); each query is a workflow task. */
  pollMs?: number;
  /** A bundle made by buildWorkflowBundle, loaded as `ab-upgrade worker --workflow-bundle` does; else bundled at start. */
  workflowBundleFile?: string;
}

export interface HostOutcome {
  name: string;
  scripted: Outcome;
  state: string;
  /** The fake host's own view: the slot it runs and GRUB's default. */
  running: string;
  defaultSlot: string;
  reason?: string;
}

export interface WaveFigures {
  number: number;
  hosts: number;
  /** The slowest host's scripted time. */
  idealS: number;
  /** First host started → last host ended (workflow time). */
  actualS: number;
  /** Previous wave's end (or the start request) → this wave's start: approval and hand-over. */
  gateS: number;
  /**
   * Where the wave's time beyond its ideal went, from the host workflows' histories: the wave's
   * start → its last host workflow's start; each host's run time minus its script (p50, max);
   * the last host workflow's end → the wave's end (the campaign noticing).
   */
  breakdown?: { startLagS: number; hostOverheadS: { p50: number; max: number }; endLagS: number };
}

export interface RunFigures {
  hosts: number;
  scale: number;
  seed: number;
  /** Waves run (all the campaign file plans, unless stopped after some). */
  wavesRun: number;
  wavesPlanned: number;
  /** Hosts in the waves run. */
  hostsRun: number;
  campaign: string;
  state: string;
  /** Start request → the last wave's end. */
  wallS: number;
  /** Sum over waves of the slowest host's scripted time. */
  idealS: number;
  ratio: number;
  waves: WaveFigures[];
  outcomes: Record<string, number>;
  /** Hosts whose end state differs from their script (empty when all is well). */
  mismatches: HostOutcome[];
  failures: { count: number; budget: number };
  continuedAsNew: number;
  /** The bench's status queries that failed (timed out on a busy campaign) and were asked again. */
  statusQueryFailures: number;
  campaignRuns: RunSize[];
  largestHistory: RunSize;
  largestHostHistory: RunSize;
  scheduleToStartMs: { activity: { p50: number | null; p99: number | null; max: number | null; n: number }; workflowTask: { p50: number | null; p99: number | null; max: number | null; n: number } };
  /** VmHWM of this process (worker, its workflow bundle, the fleet and the client): whole run, and the largest 1 s sample while the campaign ran. */
  peakRssMB: number | null;
  campaignPeakRssMB: number;
  /** The process's memory when that peak was sampled: the JS heap (workflows, activities, client) and the rest. */
  atPeakMB: { heapUsed: number; heapTotal: number; external: number; arrayBuffers: number } | null;
  /** RSS once the worker was created (its workflow bundle built, or loaded when prebuilt), before the campaign started. */
  startRssMB: number;
  /** CPU seconds this process used from the campaign's start to its end (worker, fleet, client). */
  workerCpuS: number;
  workerOptions: Record<string, unknown>;
  hostOutcomes?: HostOutcome[];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const MB = 1024 * 1024;

function vmHwmMB(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : null;
  } catch {
    return null;
  }
}

export interface RunContext {
  client: Client;
  connection: NativeConnection;
  /** A prebuilt bundle (tests); else the worker bundles workflows/ at start, as the real worker does. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  log?: (line: string) => void;
  /** Keep every host's outcome in the figures (tests). */
  keepHostOutcomes?: boolean;
}

export async function runCampaign(ctx: RunContext, a: RunArgs): Promise<RunFigures> {
  const log = ctx.log ?? (() => undefined);
  const tag = `${a.hosts}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;
  const scripted = scriptFleet(a.hosts, a.scale, a.seed).map((h) => ({ ...h, name: `${h.name}-${tag}` }));
  const byName = new Map(scripted.map((h) => [h.name, h]));
  const dir = mkdtempSync(join(tmpdir(), 'ab-bench-campaign-'));
  const fleet = new SimulatedFleet(scripted);
  try {
    const file = writeCampaignFiles(dir, {
      name: `bench-${tag}`,
      hosts: scripted,
      scale: a.scale,
      waves: a.waves ?? [...CAMPAIGN_DEFAULTS.waves],
      failureBudget: a.failureBudget ?? CAMPAIGN_DEFAULTS.failureBudget,
      approveEachWave: a.approveEachWave ?? CAMPAIGN_DEFAULTS.approveEachWave,
      // Long enough to be read after it ends; the campaign then closes by itself.
      retryWithin: '2s',
    });
    if (a.stopAfterWave !== undefined && a.approveEachWave === false) throw new Error('stopAfterWave needs approveEachWave (it stops at the approval gate)');
    const spec = await loadCampaign(file);
    if (spec.profiles.length !== a.hosts) throw new Error(`the campaign file gave ${spec.profiles.length} hosts, not ${a.hosts}`);

    const taskQueue = `bench-${tag}`;
    const worker = await createWorker({
      connection: ctx.connection,
      taskQueue,
      activities: fleet.activities(),
      ...(ctx.workflowBundle ? { workflowBundle: ctx.workflowBundle } : {}),
      ...(a.workerOptions ? { options: a.workerOptions } : {}),
    });
    const startRssMB = round(process.memoryUsage.rss() / MB, 1);
    const cpu0 = process.cpuUsage();
    const o = worker.options;
    const workerOptions = {
      maxConcurrentWorkflowTaskExecutions: o.tuner.workflowTaskSlotSupplier,
      maxConcurrentActivityTaskExecutions: o.tuner.activityTaskSlotSupplier,
      maxCachedWorkflows: o.maxCachedWorkflows,
      workflowTaskPollerBehavior: o.workflowTaskPollerBehavior,
      activityTaskPollerBehavior: o.activityTaskPollerBehavior,
      nonStickyToStickyPollRatio: o.nonStickyToStickyPollRatio,
      stickyQueueScheduleToStartTimeoutMs: o.stickyQueueScheduleToStartTimeoutMs,
      maxHeartbeatThrottleIntervalMs: o.maxHeartbeatThrottleIntervalMs,
      reuseV8Context: o.reuseV8Context,
      overrides: a.workerOptions ?? {},
    };

    let campaignPeakRss = 0;
    let atPeak = null as NodeJS.MemoryUsage | null;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      if (m.rss > campaignPeakRss) [campaignPeakRss, atPeak] = [m.rss, m];
    }, 1000);
    const saved = process.env.AB_UPGRADE_TASK_QUEUE;
    process.env.AB_UPGRADE_TASK_QUEUE = taskQueue;
    let t0 = 0;
    let final: CampaignStatus;
    let firstRunId: string | undefined;
    let statusQueryFailures = 0;
    try {
      final = await worker.runUntil(async () => {
        t0 = Date.now();
        const handle = await startCampaign(ctx.client, spec, 'bench');
        firstRunId = (handle as { firstExecutionRunId?: string }).firstExecutionRunId;
        let lastLog = 0;
        let queryFailures = 0;
        for (;;) {
          // A busy campaign may miss a query's deadline: ask again (counted in the figures).
          const s = await handle.query(campaignStatusQuery).catch((e: unknown) => {
            queryFailures++;
            log(`  status query failed (${queryFailures}): ${e instanceof Error ? e.message : String(e)}`);
            return undefined;
          });
          if (!s) continue;
          if (a.stopAfterWave !== undefined && s.state === 'awaiting-approval' && (s.currentWave ?? 0) > a.stopAfterWave) {
            // Stopped at a wave boundary, where no host runs: cancelling touches no host.
            statusQueryFailures = queryFailures;
            await handle.cancel();
            await handle.result().catch(() => undefined);
            return s;
          }
          if (s.state === 'awaiting-approval' && s.currentWave) {
            await handle.executeUpdate(approveWaveUpdate, { args: [{ by: 'bench', wave: s.currentWave }] }).catch((e: unknown) => {
              log(`  approving wave ${s.currentWave} failed, asking again: ${e instanceof Error ? e.message : String(e)}`);
            });
          }
          if (['done', 'halted', 'cancelled'].includes(s.state)) break;
          if (Date.now() - lastLog > 10_000) {
            lastLog = Date.now();
            const ended = s.hosts.filter((h) => !['pending', 'running'].includes(h.state)).length;
            log(`  ${((Date.now() - t0) / 1000).toFixed(0)}s: ${s.state}, wave ${s.currentWave ?? '-'} of ${s.waves.length}, ${ended}/${a.hosts} hosts ended, rss ${Math.round(process.memoryUsage.rss() / MB)} MB`);
          }
          await new Promise((r) => setTimeout(r, a.pollMs ?? 250));
        }
        statusQueryFailures = queryFailures;
        return handle.result();
      });
    } finally {
      clearInterval(sampler);
      if (saved === undefined) delete process.env.AB_UPGRADE_TASK_QUEUE;
      else process.env.AB_UPGRADE_TASK_QUEUE = saved;
    }
    const peakRssMB = vmHwmMB();
    const cpu = process.cpuUsage(cpu0);
    const workerCpuS = round((cpu.user + cpu.system) / 1e6, 1);

    // Ideal and actual, wave by wave (round 1: the bench never retries).
    let prevEnd = t0;
    const ran = final.waves.filter((w) => w.state === 'done');
    const waves: WaveFigures[] = ran.map((w) => {
      const start = Date.parse(w.startedAt!);
      const end = Date.parse(w.endedAt!);
      const idealS = Math.max(...w.hosts.map((n) => byName.get(n)!.scriptedMs)) / 1000;
      const f = { number: w.number, hosts: w.hosts.length, idealS: round(idealS), actualS: round((end - start) / 1000), gateS: round((start - prevEnd) / 1000) };
      prevEnd = end;
      return f;
    });
    const wallS = (prevEnd - t0) / 1000;
    const idealS = waves.reduce((s, w) => s + w.idealS, 0);
    const planned = planWaves(scripted.map((h) => h.name), spec.waves);
    const expectedWaves = a.stopAfterWave === undefined ? planned.length : Math.min(a.stopAfterWave, planned.length);
    if (ran.length !== expectedWaves) throw new Error(`ran ${ran.length} waves, the campaign file plans ${planned.length}${a.stopAfterWave ? ` (stopping after ${a.stopAfterWave})` : ''}`);

    const inRanWaves = new Set(ran.flatMap((w) => w.hosts));
    const hostOutcomes: HostOutcome[] = final.hosts.filter((h) => inRanWaves.has(h.name)).map((h) => {
      const fake = fleet.fakes.get(h.name)!;
      return { name: h.name, scripted: byName.get(h.name)!.outcome, state: h.state, running: fake.running, defaultSlot: fake.defaultSlot, ...(h.reason ? { reason: h.reason } : {}) };
    });
    const expectedSlot = (o: Outcome) => (o === 'committed' ? 'b' : 'a');
    const mismatches = hostOutcomes.filter((h) => h.state !== h.scripted || h.running !== expectedSlot(h.scripted) || h.defaultSlot !== expectedSlot(h.scripted));
    const outcomes: Record<string, number> = {};
    for (const h of hostOutcomes) outcomes[h.state] = (outcomes[h.state] ?? 0) + 1;

    log(`  ${final.state} after ${((Date.now() - t0) / 1000).toFixed(0)}s; collecting the histories...`);
    const campaignFigures = await historyFigures(ctx.client, campaignWorkflowId(spec.name), firstRunId);
    const started = final.hosts.filter((h) => h.attempts > 0).map((h) => hostWorkflowId(h.name));
    const hostFigures = await fleetHistoryFigures(ctx.client, started);
    const hostRuns = new Map(hostFigures.runs.map((r) => [r.workflowId, r]));
    for (const [i, w] of ran.entries()) {
      const runs = w.hosts.map((n) => hostRuns.get(hostWorkflowId(n))).filter((r) => r !== undefined);
      if (runs.length !== w.hosts.length) continue;
      const overheads = w.hosts.map((n, j) => (runs[j]!.lastEventMs - runs[j]!.firstEventMs - byName.get(n)!.scriptedMs) / 1000);
      waves[i]!.breakdown = {
        startLagS: round((Math.max(...runs.map((r) => r.firstEventMs)) - Date.parse(w.startedAt!)) / 1000),
        hostOverheadS: { p50: round(quantile(overheads, 0.5)!), max: round(quantile(overheads, 1)!) },
        endLagS: round((Date.parse(w.endedAt!) - Math.max(...runs.map((r) => r.lastEventMs))) / 1000),
      };
    }
    const largest = (runs: RunSize[]) => runs.reduce((m, r) => (r.bytes > m.bytes ? r : m));
    const waits = {
      activityMs: hostFigures.waits.activityMs,
      workflowTaskMs: [...hostFigures.waits.workflowTaskMs, ...campaignFigures.waits.workflowTaskMs],
    };
    const stats = (xs: number[]) => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: quantile(xs, 1), n: xs.length });

    return {
      hosts: a.hosts,
      scale: a.scale,
      seed: a.seed,
      wavesRun: ran.length,
      wavesPlanned: planned.length,
      hostsRun: inRanWaves.size,
      campaign: spec.name,
      state: final.state,
      wallS: round(wallS),
      idealS: round(idealS),
      ratio: round(wallS / idealS, 3),
      waves,
      outcomes,
      mismatches,
      failures: { count: final.failures.count, budget: final.failures.budget },
      continuedAsNew: final.continuedAsNew,
      statusQueryFailures,
      campaignRuns: campaignFigures.runs,
      largestHistory: largest([...campaignFigures.runs, ...hostFigures.runs]),
      largestHostHistory: largest(hostFigures.runs),
      scheduleToStartMs: { activity: stats(waits.activityMs), workflowTask: stats(waits.workflowTaskMs) },
      peakRssMB,
      campaignPeakRssMB: round(campaignPeakRss / MB, 1),
      atPeakMB: atPeak && { heapUsed: round(atPeak.heapUsed / MB, 1), heapTotal: round(atPeak.heapTotal / MB, 1), external: round(atPeak.external / MB, 1), arrayBuffers: round(atPeak.arrayBuffers / MB, 1) },
      startRssMB,
      workerCpuS,
      workerOptions,
      ...(ctx.keepHostOutcomes ? { hostOutcomes } : {}),
    };
  } finally {
    fleet.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The child process: connect, run one campaign, print its figures as one JSON line. */
async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as RunArgs & { address: string };
  // Rollbacks and failed activities are scripted: their warnings are expected.
  // AB_BENCH_LOG=WARN shows the SDK's warnings (a workflow task failing, say) when a run stalls.
  Runtime.install({ logger: new DefaultLogger((process.env.AB_BENCH_LOG ?? 'ERROR') as 'ERROR') });
  const [connection, clientConnection] = await Promise.all([NativeConnection.connect({ address: args.address }), Connection.connect({ address: args.address })]);
  try {
    const client = new Client({ connection: clientConnection });
    const workflowBundle = args.workflowBundleFile ? loadWorkflowBundle(args.workflowBundleFile, { encodedFailures: false }) : undefined;
    const figures = await runCampaign({ client, connection, log: (l) => console.error(l), ...(workflowBundle ? { workflowBundle } : {}) }, args);
    console.log(JSON.stringify(figures));
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });
}
