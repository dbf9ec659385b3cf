// Campaign scale benchmark: a fleetCampaign over 100 and 1000 simulated hosts on the real Temporal
// dev server, one worker, the lab's phase times scaled down (./campaign-fleet.ts). Each size runs
// in its own child process (./campaign-run.ts) against a fresh dev server, so the worker's peak
// RSS and the server's state are its own. Prints a table and writes bench/results/campaign.json
// (the previous headline run is kept, summarized, under `earlier`).
//   npm run bench:campaign [-- --hosts 100,1000 --scale 0.1 --seed 1 --label tuned --stop-after 1000:3
//                              --worker-options '{"maxConcurrentActivityTaskExecutions":400}' --server-db wal|file|memory --poll-ms 250
//                              --server-config '{}'
//                              --bundle prebuilt|at-start]
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RECOMMENDED_DYNAMIC_CONFIG, startDevServer } from '../test/helpers/temporal.js';
import { buildWorkflowBundle } from '../worker/workflow-bundle.js';
import { JITTER, LAB_COMEBACK_DEADLINE_S, LAB_PHASE_S, LAB_POLL_S, FAILURE_SHARE } from './campaign-fleet.js';
import { CAMPAIGN_DEFAULTS, type RunArgs, type RunFigures } from './campaign-run.js';
import { runJsonChild } from './json-child.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const SIZES = arg('hosts', '100,1000').split(',').map(Number);
/** "1000:3": stop the 1000-host campaign after its 3rd wave (at the approval gate); others run all waves. */
const STOP_AFTER = Object.fromEntries(
  arg('stop-after', '')
    .split(',')
    .filter(Boolean)
    .map((x) => x.split(':').map(Number) as [number, number]),
) as Record<number, number>;
const SCALE = Number(arg('scale', '0.1'));
const SEED = Number(arg('seed', '1'));
const LABEL = arg('label', 'run');
const WORKER_OPTIONS = JSON.parse(arg('worker-options', '{}')) as RunArgs['workerOptions'];
/** The benchmark's own status query interval, in ms: it approves each wave when it sees the gate. */
const POLL_MS = Number(arg('poll-ms', '250'));
/**
 * The dev server's store: "wal" (the database file in write-ahead-log mode, as the tests and
 * temporal-dev.sh run it), "file" (the same file with SQLite's defaults), or "memory" (no file).
 */
const SERVER_DBS = { wal: {}, file: { sqlitePragmas: [] }, memory: { inMemory: true } } as const;
const SERVER_DB = arg('server-db', 'wal') as keyof typeof SERVER_DBS;
/** Dynamic config for the dev server, as JSON, in place of the tests' (RECOMMENDED_DYNAMIC_CONFIG); '{}' for the server's defaults. */
const SERVER_CONFIG = JSON.parse(arg('server-config', JSON.stringify(RECOMMENDED_DYNAMIC_CONFIG))) as Record<string, string | number | boolean>;
if (!(SERVER_DB in SERVER_DBS)) throw new Error(`--server-db: ${SERVER_DB} is not wal, file or memory`);
/**
 * "prebuilt": the workflows bundled once here, the worker loads the file (`ab-upgrade worker
 * --workflow-bundle`); "at-start": the worker bundles them itself, in its own process.
 */
const BUNDLE = arg('bundle', 'prebuilt');
if (BUNDLE !== 'prebuilt' && BUNDLE !== 'at-start') throw new Error(`--bundle: ${BUNDLE} is not prebuilt or at-start`);
const OUT = arg('out', join(ROOT, 'bench/results/campaign.json'));
const GOALS = { ratio: 1.05, peakRssMB: 512, historyBytes: 10 * 1024 * 1024 };
const CORES = cpus().length;

const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

/** CPU seconds a process used so far (utime + stime), or null. */
function cpuSecondsOfPid(pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return Math.round((Number(fields[11]) + Number(fields[12])) / 10) / 10; // clock ticks at 100 Hz
  } catch {
    return null;
  }
}

function peakRssOfPid(pid: number | undefined): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** Runs ./campaign-run.ts in a child process; its progress goes to our stderr, its figures come back. */
const runChild = (args: RunArgs & { address: string }): Promise<RunFigures> =>
  runJsonChild(join(ROOT, 'bench/campaign-run.ts'), [JSON.stringify(args)], `campaign run of ${args.hosts} hosts`);

interface SizeRecord extends RunFigures {
  loadBefore: number[];
  loadAfter: number[];
  /** 1-minute load average above the core count before or after: the figures are from a busy machine. */
  loaded: boolean;
  serverPeakRssMB: number | null;
  /** CPU seconds of the dev server over the whole run (start-up and history reads included). */
  serverCpuS: number | null;
  goals: { ratio: boolean; peakRss: boolean; history: boolean };
}

async function measure(hosts: number, workflowBundleFile: string | undefined): Promise<SizeRecord> {
  const loadBefore = load();
  const server = await startDevServer({ ...SERVER_DBS[SERVER_DB], dynamicConfig: SERVER_CONFIG });
  try {
    console.error(`${hosts} hosts: dev server ${server.address}, load ${loadBefore.join(' ')}`);
    const stopAfterWave = STOP_AFTER[hosts];
    const f = await runChild({
      address: server.address,
      hosts,
      scale: SCALE,
      seed: SEED,
      ...(WORKER_OPTIONS ? { workerOptions: WORKER_OPTIONS } : {}),
      ...(stopAfterWave ? { stopAfterWave } : {}),
      pollMs: POLL_MS,
      ...(workflowBundleFile ? { workflowBundleFile } : {}),
    });
    const serverPeakRssMB = peakRssOfPid(server.child.pid);
    const serverCpuS = cpuSecondsOfPid(server.child.pid);
    const loadAfter = load();
    return {
      ...f,
      loadBefore,
      loadAfter,
      loaded: loadBefore[0]! > CORES || loadAfter[0]! > CORES,
      serverPeakRssMB,
      serverCpuS,
      goals: {
        ratio: f.ratio <= GOALS.ratio,
        peakRss: (f.peakRssMB ?? Infinity) <= GOALS.peakRssMB,
        history: f.largestHistory.bytes <= GOALS.historyBytes,
      },
    };
  } finally {
    await server.stop();
  }
}

const mark = (ok: boolean) => (ok ? '✔' : '✘');

function print(runs: SizeRecord[]): void {
  console.log(`campaign scale (scale ${SCALE}: a lab second is ${SCALE * 1000} ms; ${CORES} cores; label ${LABEL})`);
  console.log('hosts | wall s | ideal s | ratio | peak RSS MB | largest history | CAN | act sched→start p50/p99 ms | wft p50/p99 ms | load before → after | outcomes');
  for (const r of runs) {
    const a = r.scheduleToStartMs.activity;
    const w = r.scheduleToStartMs.workflowTask;
    console.log(
      [
        r.wavesRun < r.wavesPlanned ? `${r.hosts} (waves 1–${r.wavesRun} of ${r.wavesPlanned}: ${r.hostsRun} hosts)` : r.hosts,
        r.wallS,
        r.idealS,
        `${r.ratio} ${mark(r.goals.ratio)}`,
        `${r.peakRssMB} ${mark(r.goals.peakRss)}`,
        `${(r.largestHistory.bytes / 1024).toFixed(0)} KiB (${r.largestHistory.events} ev) ${mark(r.goals.history)}`,
        r.continuedAsNew,
        `${a.p50}/${a.p99}`,
        `${w.p50}/${w.p99}`,
        `${r.loadBefore[0]} → ${r.loadAfter[0]}${r.loaded ? ' (LOADED)' : ''}`,
        Object.entries(r.outcomes).map(([k, v]) => `${k} ${v}`).join(', ') + (r.mismatches.length ? `; ${r.mismatches.length} NOT AS SCRIPTED` : ''),
      ].join(' | '),
    );
    console.log(`  worker: RSS ${r.startRssMB} MB at start, ${r.campaignPeakRssMB} MB peak sampled during the campaign, ${r.workerCpuS} CPU s; dev server: ${r.serverPeakRssMB} MB peak, ${r.serverCpuS} CPU s`);
    if (r.atPeakMB) console.log(`  worker at its sampled peak: JS heap ${r.atPeakMB.heapUsed} MB used of ${r.atPeakMB.heapTotal}, external ${r.atPeakMB.external} MB (array buffers ${r.atPeakMB.arrayBuffers})`);
    console.log(`  waves (ideal/actual/gate s): ${r.waves.map((w) => `${w.hosts}h ${w.idealS}/${w.actualS}/${w.gateS}`).join(', ')}`);
    const b = r.waves.filter((w) => w.breakdown);
    if (b.length) console.log(`  waves (start lag / host overhead p50, max / end lag s): ${b.map((w) => `${w.hosts}h ${w.breakdown!.startLagS} / ${w.breakdown!.hostOverheadS.p50}, ${w.breakdown!.hostOverheadS.max} / ${w.breakdown!.endLagS}`).join(', ')}`);
  }
}

const summary = (run: { date: string; label: string; workflowBundle?: string; serverDynamicConfig?: Record<string, unknown>; nodeOptions?: string; runs: SizeRecord[] }) => ({
  date: run.date,
  label: run.label,
  workflowBundle: run.workflowBundle ?? 'at-start',
  serverDynamicConfig: run.serverDynamicConfig ?? {},
  nodeOptions: run.nodeOptions ?? '',
  workerOptions: run.runs[0]?.workerOptions,
  runs: run.runs.map((r) => ({
    hosts: r.hosts,
    wavesRun: r.wavesRun,
    wavesPlanned: r.wavesPlanned,
    ratio: r.ratio,
    wallS: r.wallS,
    idealS: r.idealS,
    peakRssMB: r.peakRssMB,
    largestHistoryBytes: r.largestHistory.bytes,
    continuedAsNew: r.continuedAsNew,
    activityScheduleToStartMs: { p50: r.scheduleToStartMs.activity.p50, p99: r.scheduleToStartMs.activity.p99 },
    workflowTaskScheduleToStartMs: { p50: r.scheduleToStartMs.workflowTask.p50, p99: r.scheduleToStartMs.workflowTask.p99 },
    loadBefore: r.loadBefore,
    loadAfter: r.loadAfter,
    mismatches: r.mismatches.length,
  })),
});

async function main(): Promise<void> {
  const date = new Date().toISOString();
  const runs: SizeRecord[] = [];
  const previous = existsSync(OUT) ? (JSON.parse(readFileSync(OUT, 'utf8')) as { latest?: Record_; earlier?: unknown[] }) : {};
  const earlier = [...(previous.earlier ?? []), ...(previous.latest ? [summary(previous.latest)] : [])];
  const bundleDir = mkdtempSync(join(tmpdir(), 'ab-bench-bundle-'));
  try {
    const workflowBundleFile = BUNDLE === 'prebuilt' ? join(bundleDir, 'workflows.js') : undefined;
    if (workflowBundleFile) await buildWorkflowBundle(workflowBundleFile, { encodedFailures: false });
    // Written after each size, so a run stopped halfway keeps what it measured.
    for (const n of SIZES) {
      runs.push(await measure(n, workflowBundleFile));
      print(runs.slice(-1));
      mkdirSync(dirname(OUT), { recursive: true });
      writeFileSync(OUT, `${JSON.stringify({ latest: record(date, runs), earlier }, null, 2)}\n`);
    }
  } finally {
    rmSync(bundleDir, { recursive: true, force: true });
  }
  console.log(`wrote ${OUT}`);
  if (runs.some((r) => r.mismatches.length)) process.exitCode = 1;
}

type Record_ = ReturnType<typeof record>;

function record(date: string, runs: SizeRecord[]) {
  return {
    date,
    label: LABEL,
    serverDb: SERVER_DB,
    serverDynamicConfig: SERVER_CONFIG,
    nodeOptions: process.env.NODE_OPTIONS ?? '',
    statusPollMs: POLL_MS,
    workflowBundle: BUNDLE,
    machine: { cores: CORES, cpu: cpus()[0]?.model, memoryMB: Math.round(totalmem() / 1024 / 1024), node: process.version, platform: process.platform },
    simulation: {
      scale: SCALE,
      seed: SEED,
      jitter: `each phase of each host: lab time × scale × [${1 - JITTER}, ${1 + JITTER}]`,
      labPhaseSeconds: LAB_PHASE_S,
      labPollIntervalS: LAB_POLL_S,
      labComebackDeadlineS: LAB_COMEBACK_DEADLINE_S,
      failureShare: FAILURE_SHARE,
      campaignFile: { ...CAMPAIGN_DEFAULTS, retryWithin: '2s' },
      operator: 'approves each wave as soon as the campaign waits for it (status query every 250 ms)',
    },
    goals: GOALS,
    runs,
  };
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
