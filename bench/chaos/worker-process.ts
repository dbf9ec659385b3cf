// The real worker (worker/main.ts) as a child process of the chaos run, which a case can SIGKILL
// (as a crash would) and replace with a new one.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, sleep } from './options.js';
import { liveChildren, withPdeathsig } from './processes.js';

export class WorkerProcess {
  private exitInfo: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    liveChildren.add(child);
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ?? `exit ${code}`;
        liveChildren.delete(child);
        res();
      }),
    );
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }
  get exit(): string | undefined {
    return this.exitInfo;
  }

  /** Starts worker/main.ts; resolves once it says it polls the task queue (bounded). */
  static async start(address: string, taskQueue: string, logFile: string, readyTimeoutMs = 240_000): Promise<WorkerProcess> {
    const fd = openSync(logFile, 'a');
    const argv = withPdeathsig([process.execPath, join(ROOT, 'bin/run-ts.js'), join(ROOT, 'worker/main.ts')]);
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, TEMPORAL_ADDRESS: address, AB_UPGRADE_TASK_QUEUE: taskQueue },
    });
    closeSync(fd);
    const w = new WorkerProcess(child, logFile);
    const started = Date.now();
    const from = existsSync(logFile) ? readFileSync(logFile, 'utf8').length : 0;
    for (let i = 0; i < readyTimeoutMs / 250 && Date.now() - started < readyTimeoutMs; i++) {
      if (/ab-upgrade worker: .*task queue/.test(readFileSync(logFile, 'utf8').slice(from))) return w;
      if (!w.alive) throw new Error(`worker exited during start-up (${w.exit}); log ${logFile}`);
      await sleep(250);
    }
    await w.kill();
    throw new Error(`worker not ready within ${readyTimeoutMs / 1000} s; log ${logFile}`);
  }

  /** SIGKILL, as a crash would; waits (bounded) until it is gone. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await Promise.race([this.exited, sleep(15_000)]);
  }

  /** SIGTERM (graceful: running activities get the worker's grace time), SIGKILL after 45 s. */
  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    await Promise.race([this.exited, sleep(45_000)]);
    await this.kill();
  }
}
