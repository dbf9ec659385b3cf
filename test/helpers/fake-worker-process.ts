// A fake-host worker that can live in its own process and be killed with SIGKILL.
//
// The in-memory FakeHost (./fake-host.ts) dies with its process, so this wraps it in a
// PersistentFakeHost that mirrors its state (slot, GRUB default/next, boot id, boot entry, install
// marker, a boot in progress, the call and effect logs, install resume points, the hang marker)
// into a JSON file after every change, atomically (write + rename, so a SIGKILL never leaves half
// a file). A worker started later — in another process or in the test process — restores the host
// from that file and carries on with the same simulated machine: a boot that was in progress ends
// when it would have. Each logged call also records which worker made it and the activity
// attempt, so a test can check from the file alone which side effects happened, and how often.
//
// A worker process can be made to block inside an activity, before or after its side effect
// (FakeHostScript.hang); the file's `hangingIn` says when it does, so a test can kill it there.
//
// One worker can serve several such hosts (PersistentFakeFleet, each with its own state file):
// every activity call goes to the host named by its profile.
//
// As a script (the child-process worker):
//   node bin/run-ts.js test/helpers/fake-worker-process.ts
//   env: FAKE_WORKER_ADDRESS      Temporal frontend (host:port)
//        FAKE_WORKER_TASK_QUEUE   task queue
//        FAKE_WORKER_HOSTS        the hosts as JSON: [{ name (the profile's), stateFile (created if
//                                 missing), script? (FakeHostScript) }, ...]
//        FAKE_WORKER_IDENTITY     worker identity (also written into the call logs)
//        FAKE_WORKER_BUNDLE       path of a prebuilt workflow bundle (optional; else bundles workflows/)
//        FAKE_WORKER_LOG_LEVEL    what the worker logs to stderr (optional; else TEMPORAL_TEST_LOG, else ERROR)
// Prints "READY" on stdout once the worker is created, then runs until killed (SIGINT/SIGTERM:
// graceful shutdown).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkerOptions } from '@temporalio/worker';
import type { BootEntry, HostActivities, SlotName } from '../../lib/contract.js';
import { createWorker } from '../../worker/worker.js';
import { FakeHost, routeByProfile, type FakeHostScript } from './fake-host.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SELF = fileURLToPath(import.meta.url);

export interface PersistedCall {
  name: keyof HostActivities;
  args: unknown[];
  at: number;
  /** Identity of the worker that ran this call. */
  by: string;
  /** The activity attempt (1 = first). */
  attempt: number;
}

export interface PersistedHost {
  running: SlotName;
  defaultSlot: SlotName;
  nextOnce: SlotName | null;
  up: boolean;
  hung: boolean;
  bootId: string;
  bootSeq: number;
  entry: BootEntry | null;
  installMarker: Record<SlotName, boolean>;
  pendingBoot: { slot: SlotName; at: number } | null;
  hangingIn: string | null;
  installResumedFrom: number[];
  effects: string[];
  calls: PersistedCall[];
}

/** Reads a state file written by PersistentFakeHost. */
export function readPersistedHost(file: string): PersistedHost {
  return JSON.parse(readFileSync(file, 'utf8')) as PersistedHost;
}

/** A FakeHost whose state survives its process, in a JSON file. */
export class PersistentFakeHost {
  readonly fake: FakeHost;
  private readonly meta: { by: string; attempt: number }[] = [];
  private last = '';
  /** Set while a call's synchronous part runs: its changes are saved with the call's worker and attempt. */
  private inCall = false;

  constructor(
    readonly stateFile: string,
    readonly identity: string,
    script: FakeHostScript = {},
  ) {
    this.fake = new FakeHost(script);
    if (existsSync(stateFile)) this.restore(readPersistedHost(stateFile));
    this.save();
    // Boots end and calls block outside the calls' own steps: save those changes too.
    this.fake.onChange = () => this.inCall || this.save();
  }

  private restore(s: PersistedHost): void {
    if (!s.up && !s.hung && !s.pendingBoot) throw new Error(`${this.stateFile}: the host is down with no boot in progress`);
    const f = this.fake;
    f.running = s.running;
    f.defaultSlot = s.defaultSlot;
    f.nextOnce = s.nextOnce;
    f.up = s.up;
    f.hung = s.hung;
    f.bootId = s.bootId;
    f.bootSeq = s.bootSeq;
    f.entry = s.entry ?? undefined;
    f.installMarker = { ...s.installMarker };
    if (s.pendingBoot) f.resumeBoot(s.pendingBoot);
    // A call blocked at a hang point died with its worker; this host has not blocked (yet).
    f.hangingIn = null;
    f.installResumedFrom.push(...s.installResumedFrom);
    f.effects.push(...s.effects);
    for (const c of s.calls) {
      f.calls.push({ name: c.name, args: c.args, at: c.at });
      this.meta.push({ by: c.by, attempt: c.attempt });
    }
  }

  snapshot(): PersistedHost {
    const f = this.fake;
    return {
      running: f.running,
      defaultSlot: f.defaultSlot,
      nextOnce: f.nextOnce,
      up: f.up,
      hung: f.hung,
      bootId: f.bootId,
      bootSeq: f.bootSeq,
      entry: f.entry ?? null,
      installMarker: { ...f.installMarker },
      pendingBoot: f.pendingBoot,
      hangingIn: f.hangingIn,
      installResumedFrom: [...f.installResumedFrom],
      effects: [...f.effects],
      calls: f.calls.map((c, i) => ({ ...c, by: this.meta[i]?.by ?? '?', attempt: this.meta[i]?.attempt ?? 0 })),
    };
  }

  /** Writes the state if it changed (atomically: temp file + rename). */
  save(): void {
    const text = JSON.stringify(this.snapshot(), null, 1);
    if (text === this.last) return;
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.stateFile);
    this.last = text;
  }

  /** FakeHost's activities; each call is logged with worker and attempt and persisted before it acts. */
  activities(): HostActivities {
    const inner = this.fake.activities() as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    const wrapped: Record<string, (...a: unknown[]) => Promise<unknown>> = {};
    for (const [name, fn] of Object.entries(inner)) {
      wrapped[name] = async (...args: unknown[]) => {
        const attempt = Context.current().info.attempt;
        const before = this.fake.calls.length;
        // FakeHost logs the call synchronously, before its first await, and may reach a hang point
        // there too. Both are saved together with who made the call, in one write: the kill
        // harness SIGKILLs this process as soon as it reads a hang point from the file.
        this.inCall = true;
        let result: Promise<unknown>;
        try {
          result = fn(...args);
        } finally {
          this.inCall = false;
        }
        for (let i = before; i < this.fake.calls.length; i++) this.meta[i] = { by: this.identity, attempt };
        this.save();
        try {
          return await result;
        } finally {
          this.save();
        }
      };
    }
    return wrapped as unknown as HostActivities;
  }

  dispose(): void {
    this.fake.onChange = undefined;
    this.fake.dispose();
    this.save();
  }
}

/** A host of a fleet: the profile name that selects it, its state file, its script. */
export interface FleetHost {
  name: string;
  stateFile: string;
  script?: FakeHostScript;
}

/** PersistentFakeHosts behind one set of activities, each call going to the host its profile names. */
export class PersistentFakeFleet {
  readonly hosts = new Map<string, PersistentFakeHost>();
  private readonly acts = new Map<string, HostActivities>();

  constructor(
    entries: FleetHost[],
    readonly identity: string,
  ) {
    for (const e of entries) {
      const host = new PersistentFakeHost(e.stateFile, identity, e.script);
      this.hosts.set(e.name, host);
      this.acts.set(e.name, host.activities());
    }
  }

  activities(): HostActivities {
    return routeByProfile((name) => this.acts.get(name));
  }

  dispose(): void {
    for (const h of this.hosts.values()) h.dispose();
  }
}

/** Worker options of the fake workers: cancellation and heartbeats reach the server fast. */
export const FAKE_WORKER_OPTIONS: Partial<WorkerOptions> = {
  maxHeartbeatThrottleInterval: '200ms',
  defaultHeartbeatThrottleInterval: '200ms',
  shutdownGraceTime: '1s',
  stickyQueueScheduleToStartTimeout: '2s',
};

export async function createPersistentFakeWorker(o: {
  connection: NativeConnection;
  fleet: PersistentFakeFleet;
  taskQueue: string;
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** More worker options (over FAKE_WORKER_OPTIONS). */
  options?: Partial<WorkerOptions>;
}): Promise<Worker> {
  return createWorker({
    connection: o.connection,
    taskQueue: o.taskQueue,
    activities: o.fleet.activities(),
    ...(o.workflowBundle ? { workflowBundle: o.workflowBundle } : {}),
    options: { ...FAKE_WORKER_OPTIONS, ...o.options, identity: o.fleet.identity },
  });
}

// ---------------------------------------------------------------------------------------------
// Test side: start this file as a child process.

export interface FakeWorkerProcess {
  child: ChildProcess;
  /** Resolves once the child printed READY; rejects if it exits first or after `timeoutMs`. */
  ready: Promise<void>;
  /** Resolves with the exit code/signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stdout + stderr so far (for failure messages). */
  output(): string;
  alive(): boolean;
}

export function startFakeWorkerProcess(o: {
  address: string;
  taskQueue: string;
  hosts: FleetHost[];
  identity: string;
  bundlePath?: string;
  readyTimeoutMs?: number;
  /** What the worker logs (to its stderr, part of output()). */
  logLevel?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
}): FakeWorkerProcess {
  const child = spawn(process.execPath, [resolve(ROOT, 'bin/run-ts.js'), SELF], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      FAKE_WORKER_ADDRESS: o.address,
      FAKE_WORKER_TASK_QUEUE: o.taskQueue,
      FAKE_WORKER_HOSTS: JSON.stringify(o.hosts),
      FAKE_WORKER_IDENTITY: o.identity,
      ...(o.bundlePath ? { FAKE_WORKER_BUNDLE: o.bundlePath } : {}),
      ...(o.logLevel ? { FAKE_WORKER_LOG_LEVEL: o.logLevel } : {}),
    },
  });
  let out = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      res(exitInfo);
    }),
  );
  const readyTimeoutMs = o.readyTimeoutMs ?? 60_000;
  const ready = new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${o.identity}: not ready within ${readyTimeoutMs} ms:\n${out}`)), readyTimeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/^READY$/m.test(out)) {
        clearTimeout(timer);
        res();
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
    void exited.then((e) => {
      clearTimeout(timer);
      rej(new Error(`${o.identity}: exited before READY (${JSON.stringify(e)}):\n${out}`));
    });
  });
  ready.catch(() => undefined); // observed by the caller; no unhandled rejection if it is not
  return { child, ready, exited, output: () => out, alive: () => exitInfo === undefined };
}

// ---------------------------------------------------------------------------------------------
// Script side.

async function main(): Promise<void> {
  const need = (k: string): string => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  const address = need('FAKE_WORKER_ADDRESS');
  const taskQueue = need('FAKE_WORKER_TASK_QUEUE');
  const hosts = JSON.parse(need('FAKE_WORKER_HOSTS')) as FleetHost[];
  const identity = need('FAKE_WORKER_IDENTITY');
  const bundlePath = process.env.FAKE_WORKER_BUNDLE;

  const level = process.env.FAKE_WORKER_LOG_LEVEL ?? process.env.TEMPORAL_TEST_LOG ?? 'ERROR';
  Runtime.install({ logger: new DefaultLogger(level as 'WARN') });
  const fleet = new PersistentFakeFleet(hosts, identity);
  const connection = await NativeConnection.connect({ address });
  try {
    const worker = await createPersistentFakeWorker({
      connection,
      fleet,
      taskQueue,
      ...(bundlePath ? { workflowBundle: { codePath: bundlePath } } : {}),
    });
    process.stdout.write('READY\n');
    await worker.run();
  } finally {
    fleet.dispose();
    await connection.close();
  }
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === SELF;
if (isMain) {
  main().catch((err: unknown) => {
    console.error('fake-worker-process:', err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
