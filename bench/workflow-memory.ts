// What one waiting workflow costs a worker: N workflows started and parked, then the worker
// process's RSS compared with its RSS before the first one. The SDK evaluates every module a
// workflow loads once per workflow instance and keeps it while the workflow is cached, so what a
// workflow imports decides how many waiting hosts (a campaign wave at its approval gate) one
// worker holds. Variants, each in its own worker process on a fresh dev server:
//   empty               a workflow that loads nothing and waits (the baseline)
//   zod                 the same with zod loaded and one tiny schema used
//   profile-in-sandbox  the same checking a host profile in the sandbox (lib/profile.ts), as the
//                       host workflows did before the check became a local activity
//   upgradeHost         the production workflows (workflows/index.ts) against fake hosts,
//                       parked at the approval wait
// Prints a table and writes bench/results/workflow-memory.json (per-workflow MB, and each as a
// ratio to the baseline of the same run).
//   npm run bench:workflow-memory [-- --hosts 200 --variants empty,zod,profile-in-sandbox,upgradeHost]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { Profile } from '../lib/profile.js';
import { startOptions, statusQuery } from '../lib/workflow-api.js';
import { FakeHost, routeByProfile } from '../test/helpers/fake-host.js';
import { fakeProfile } from '../test/helpers/fake-profile.js';
import { startDevServer } from '../test/helpers/temporal.js';
import { createWorker, workflowsPath } from '../worker/worker.js';
import { runJsonChild } from './json-child.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const VARIANTS = ['empty', 'zod', 'profile-in-sandbox', 'upgradeHost'] as const;
type Variant = (typeof VARIANTS)[number];
const BENCH_WORKFLOWS: Record<Exclude<Variant, 'upgradeHost'>, string> = {
  empty: join(ROOT, 'bench/workflow-memory/empty.workflows.ts'),
  zod: join(ROOT, 'bench/workflow-memory/zod.workflows.ts'),
  'profile-in-sandbox': join(ROOT, 'bench/workflow-memory/profile.workflows.ts'),
};
/** Every wait is bounded: a child that has not parked its workflows by then fails. */
const PARK_TIMEOUT_MS = 10 * 60_000;
const QUERY_BATCH = 20;

interface ChildArgs {
  variant: Variant;
  n: number;
  address: string;
}
interface ChildFigures {
  variant: Variant;
  n: number;
  /** Worker running, no workflow yet. */
  rssBeforeMB: number;
  /** All n workflows parked (and 3 s to settle). */
  rssParkedMB: number;
  mainHeapUsedMB: number;
  parkSeconds: number;
}

const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A fake host's profile whose approval wait outlasts the measurement. */
const hostProfile = (i: number): Profile =>
  fakeProfile({ name: `mem-${i}`, timings: { approvalTimeout: '2h', comebackDeadline: '5m', pollInterval: '1s', healthTimeout: '30s' } });

/** Runs `check` over `items` QUERY_BATCH at a time until every one passes, within the bound. */
async function untilAll<T>(items: T[], check: (item: T) => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + PARK_TIMEOUT_MS;
  let waiting = items;
  while (waiting.length) {
    if (Date.now() > deadline) throw new Error(`${waiting.length} of ${items.length} workflows not ${what} after ${PARK_TIMEOUT_MS / 60_000} min`);
    const still: T[] = [];
    for (let i = 0; i < waiting.length; i += QUERY_BATCH) {
      const batch = waiting.slice(i, i + QUERY_BATCH);
      const ok = await Promise.all(batch.map((x) => check(x).catch(() => false)));
      batch.forEach((x, j) => ok[j] || still.push(x));
    }
    waiting = still;
    if (waiting.length) await sleep(1000);
  }
}

/** One variant in this process: the worker, its n workflows parked, the RSS before and after. */
async function child(a: ChildArgs): Promise<ChildFigures> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const path = a.variant === 'upgradeHost' ? workflowsPath : BENCH_WORKFLOWS[a.variant];
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: path, logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address: a.address });
  const client = new Client({ connection: await Connection.connect({ address: a.address }) });
  const taskQueue = `mem-${a.variant}`;
  const profiles = Array.from({ length: a.n }, (_, i) => hostProfile(i));
  const hosts = new Map(profiles.map((p) => [p.name, new FakeHost().activities()]));
  const worker = await createWorker({
    connection,
    taskQueue,
    activities: routeByProfile((name) => hosts.get(name)),
    workflowBundle,
    // Every parked workflow stays cached: that is what is measured.
    options: { maxCachedWorkflows: a.n + 50 },
  });
  const running = worker.run();
  try {
    await sleep(3000);
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const handles = await Promise.all(
      profiles.map((p) =>
        a.variant === 'upgradeHost'
          ? client.workflow.start('upgradeHost', { ...startOptions(p, taskQueue), args: [{ profile: p, requestedBy: 'bench' }] })
          : client.workflow.start('idle', { taskQueue, workflowId: `mem-${a.variant}-${p.name}`, args: [a.variant === 'zod' ? { n: 1 } : p] }),
      ),
    );
    await untilAll(
      handles,
      async (h) => (a.variant === 'upgradeHost' ? (await h.query(statusQuery)).state === 'awaiting-approval' : await h.query<boolean>('ready')),
      'parked',
    );
    const parkSeconds = (Date.now() - started) / 1000;
    await sleep(3000);
    const figures = { variant: a.variant, n: a.n, rssBeforeMB: mb(rssBefore), rssParkedMB: mb(process.memoryUsage().rss), mainHeapUsedMB: mb(process.memoryUsage().heapUsed), parkSeconds };
    await Promise.all(handles.map((h) => h.terminate('bench:workflow-memory done').catch(() => undefined)));
    return figures;
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
  }
}

const runChild = (a: ChildArgs): Promise<ChildFigures> =>
  runJsonChild(fileURLToPath(import.meta.url), ['--child', JSON.stringify(a)], `${a.variant} × ${a.n}`);

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};

interface Row extends ChildFigures {
  perWorkflowMB: number;
  /** perWorkflowMB ÷ the empty workflow's at the same n, in this run. */
  ratioToEmpty: number | null;
  load: number[];
}

async function main(): Promise<void> {
  const sizes = arg('hosts', '200').split(',').map(Number);
  const asked = arg('variants', VARIANTS.join(',')).split(',') as Variant[];
  for (const v of asked) if (!VARIANTS.includes(v)) throw new Error(`--variants: ${v} is not one of ${VARIANTS.join(', ')}`);
  const variants: Variant[] = ['empty', ...asked.filter((v) => v !== 'empty')]; // the baseline of every ratio, first
  const rows: Row[] = [];
  for (const n of sizes) {
    for (const variant of variants) {
      const server = await startDevServer();
      try {
        console.error(`${variant} × ${n}: dev server ${server.address}`);
        const f = await runChild({ variant, n, address: server.address });
        const perWorkflowMB = Math.round(((f.rssParkedMB - f.rssBeforeMB) / n) * 1000) / 1000;
        const base = rows.find((r) => r.n === n && r.variant === 'empty');
        const ratioToEmpty = base && base.perWorkflowMB > 0 ? Math.round((perWorkflowMB / base.perWorkflowMB) * 100) / 100 : null;
        rows.push({ ...f, perWorkflowMB, ratioToEmpty, load: loadavg().map((x) => Math.round(x * 100) / 100) });
      } finally {
        await server.stop();
      }
    }
  }
  console.log('variant              n   RSS before  RSS parked  per workflow  × empty  parked in');
  for (const r of rows) {
    console.log(
      `${r.variant.padEnd(20)} ${String(r.n).padStart(4)} ${r.rssBeforeMB.toFixed(0).padStart(8)} MB ${r.rssParkedMB.toFixed(0).padStart(8)} MB ` +
        `${r.perWorkflowMB.toFixed(2).padStart(9)} MB ${(r.ratioToEmpty?.toFixed(2) ?? '-').padStart(8)} ${r.parkSeconds.toFixed(0).padStart(7)} s`,
    );
  }
  const file = join(ROOT, 'bench/results/workflow-memory.json');
  mkdirSync(dirname(file), { recursive: true });
  const machine = { cores: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const sdk = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@temporalio/worker/package.json'), 'utf8')) as { version: string }).version;
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, temporalSdk: sdk, rows }, null, 2) + '\n');
  console.log(`written ${file}`);
}

const childAt = process.argv.indexOf('--child');
if (childAt > 0) {
  child(JSON.parse(process.argv[childAt + 1]!) as ChildArgs).then(
    (f) => {
      console.log(JSON.stringify(f));
      process.exit(0);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
