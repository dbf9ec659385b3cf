// vitest globalSetup: ONE real Temporal dev server for the whole test run.
//
// The `temporal` CLI is located exactly like ./temporal-dev.sh does (it is asked: `ensure`).
// The server gets a free port, a throwaway SQLite file and no UI; tests read its address with
// `inject('temporalAddress')` (also exported as $TEMPORAL_TEST_ADDRESS). Killed at teardown.
//
// Set TEMPORAL_TEST_ADDRESS=host:port before running vitest to use a server you already run.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { freePort } from '../../lib/free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
  }
}

const execFileP = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Path of the temporal CLI, via `./temporal-dev.sh ensure` (may build it with Go the first time). */
export async function locateTemporalCli(): Promise<string> {
  const { stdout } = await execFileP(join(ROOT, 'temporal-dev.sh'), ['ensure'], {
    cwd: ROOT,
    timeout: 20 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const cli = stdout.trim().split('\n').pop();
  if (!cli) throw new Error('./temporal-dev.sh ensure printed no path');
  return cli;
}

async function healthy(cli: string, address: string): Promise<boolean> {
  try {
    await execFileP(cli, ['operator', 'cluster', 'health', '--address', address, '--command-timeout', '3s'], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

export interface DevServer {
  address: string;
  child: ChildProcess;
  dir: string;
  logFile: string;
  /** SIGTERM (SIGKILL after 10 s); removes the directory unless the caller chose the database file. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would; keeps the database, so a server started again on it carries on. */
  kill(): Promise<void>;
}

export interface DevServerOptions {
  /** Frontend port on 127.0.0.1 (default: a free one). */
  port?: number;
  /** SQLite file, kept by stop() (default: one in a new temporary directory that stop() removes). */
  dbFile?: string;
  /** No database file at all: the server keeps its state in memory (a benchmark's comparison point). */
  inMemory?: boolean;
  /** SQLite pragmas for the database file, "name=value" (default: WAL_PRAGMAS; [] for SQLite's own defaults). */
  sqlitePragmas?: readonly string[];
  /** Dynamic config values, `--dynamic-config-value name=<JSON>` each (default: RECOMMENDED_DYNAMIC_CONFIG). */
  dynamicConfig?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The database file in write-ahead-log mode, synced at checkpoints: durable when the server process
 * is killed (only an OS crash can lose the last commits). SQLite's defaults (a rollback journal,
 * every commit synced) made a 1000-host campaign take 3.3 × its ideal time, this 1.24 × (npm run
 * bench:campaign -- --server-db file|wal). temporal-dev.sh starts its server the same way.
 */
export const WAL_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'] as const;

/**
 * What the README recommends for a cluster and temporal-dev.sh sets: eager activity execution (a
 * worker gets the activity its workflow task schedules in the reply to that task). The tests run
 * with it, so what is recommended is what is tested.
 */
export const RECOMMENDED_DYNAMIC_CONFIG = { 'system.enableActivityEagerExecution': true } as const;

const dynamicConfigArgs = (values: DevServerOptions['dynamicConfig'] = RECOMMENDED_DYNAMIC_CONFIG): string[] =>
  Object.entries(values).flatMap(([name, value]) => ['--dynamic-config-value', `${name}=${JSON.stringify(value)}`]);

/** Starts `temporal server start-dev --headless`; resolves once the frontend answers. */
export async function startDevServer(o: DevServerOptions = {}): Promise<DevServer> {
  const cli = await locateTemporalCli();
  const port = o.port ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  const dir = o.dbFile ? dirname(resolve(o.dbFile)) : mkdtempSync(join(tmpdir(), 'ab-upgrade-temporal-'));
  const dbFile = o.dbFile ? resolve(o.dbFile) : join(dir, 'temporal.db');
  const logFile = o.dbFile ? `${dbFile}.log` : join(dir, 'server.log');
  const logFd = openSync(logFile, 'a');
  const child = spawn(
    cli,
    ['server', 'start-dev', '--headless', '--ip', '127.0.0.1', '--port', String(port), ...(o.inMemory ? [] : ['--db-filename', dbFile]), ...(o.inMemory ? [] : (o.sqlitePragmas ?? WAL_PRAGMAS)).flatMap((p) => ['--sqlite-pragma', p]), '--log-level', 'warn', ...dynamicConfigArgs(o.dynamicConfig)],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((res) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      res();
    }),
  );

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exitPromise;
      clearTimeout(timer);
    }
    if (!o.dbFile) rmSync(dir, { recursive: true, force: true });
  };
  const kill = async () => {
    if (!exited) child.kill('SIGKILL');
    await exitPromise;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await healthy(cli, address))) {
    const tail = () => readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
    if (exited) {
      const log = tail();
      await stop();
      throw new Error(`temporal dev server exited during start-up (${JSON.stringify(exited)}):\n${log}`);
    }
    if (Date.now() > deadline) {
      const log = tail();
      await stop();
      throw new Error(`temporal dev server did not answer on ${address} within ${START_TIMEOUT_MS / 1000}s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { address, child, dir, logFile, stop, kill };
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const existing = process.env.TEMPORAL_TEST_ADDRESS;
  if (existing) {
    project.provide('temporalAddress', existing);
    return undefined;
  }
  const server = await startDevServer();
  process.env.TEMPORAL_TEST_ADDRESS = server.address;
  project.provide('temporalAddress', server.address);
  return async () => {
    await server.stop();
    delete process.env.TEMPORAL_TEST_ADDRESS;
  };
}
