// `ab-upgrade worker` as an operator starts it, a real process against the dev server: the sticky
// cache size from --max-cached-workflows or AB_UPGRADE_MAX_CACHED_WORKFLOWS reaches the SDK's
// worker (its start line prints the SDK worker's own option), SIGINT stops it cleanly, and a bad
// value is refused before any connection, naming the flag or the variable.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { buildWorkflowBundle } from '../../worker/workflow-bundle.js';
import { setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

const CLI = join(import.meta.dirname, '../../bin/ab-upgrade.js');
const START_LINE = /^ab-upgrade worker: .*\(Ctrl-C stops\)$/m;

let env: WorkflowEnv;
let dir: string;
let bundle: string;
beforeAll(async () => {
  env = await setupWorkflowEnv();
  dir = mkdtempSync(join(tmpdir(), 'ab-worker-cli-'));
  // One bundle for every start here, instead of each worker bundling at start.
  bundle = join(dir, 'workflows.js');
  await buildWorkflowBundle(bundle, { encodedFailures: false });
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await env?.close();
});

interface Run {
  exitCode: number | null;
  stderr: string;
}

/**
 * Starts the worker; once its start line is out (or it exits first), SIGINT. Bounded: SIGKILL
 * after `boundMs` whatever happens, so the test never hangs on a worker that does not stop.
 */
function runWorker(args: string[], extraEnv: Record<string, string> = {}, boundMs = 60_000): Promise<Run> {
  const child = spawn(process.execPath, [CLI, 'worker', '--workflow-bundle', bundle, ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: env.address, AB_UPGRADE_TASK_QUEUE: uniqueName('tq'), ...extraEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const kill = setTimeout(() => child.kill('SIGKILL'), boundMs);
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    const started = START_LINE.test(stderr);
    stderr += d;
    if (!started && START_LINE.test(stderr)) child.kill('SIGINT');
  });
  return new Promise((resolve) => {
    child.on('close', (exitCode) => {
      clearTimeout(kill);
      resolve({ exitCode, stderr });
    });
  });
}

test('--max-cached-workflows reaches the SDK worker; SIGINT stops it with exit 0', async () => {
  const r = await runWorker(['--max-cached-workflows', '300']);
  expect(r.stderr).toMatch(START_LINE);
  expect(r.stderr).toMatch(/, cache 300 workflows \(Ctrl-C stops\)/);
  expect(r.stderr).toContain('ab-upgrade worker: stopped');
  expect(r.exitCode).toBe(0);
}, 90_000);

test('AB_UPGRADE_MAX_CACHED_WORKFLOWS when there is no flag; the flag wins over it', async () => {
  const fromEnv = await runWorker([], { AB_UPGRADE_MAX_CACHED_WORKFLOWS: '250' });
  expect(fromEnv.stderr).toMatch(/, cache 250 workflows \(Ctrl-C stops\)/);
  expect(fromEnv.exitCode).toBe(0);
  const both = await runWorker(['--max-cached-workflows', '120'], { AB_UPGRADE_MAX_CACHED_WORKFLOWS: '250' });
  expect(both.stderr).toMatch(/, cache 120 workflows \(Ctrl-C stops\)/);
  expect(both.exitCode).toBe(0);
}, 150_000);

test('a bad size is refused before connecting, naming the flag or the variable', async () => {
  const flag = await runWorker(['--max-cached-workflows', '1']);
  expect(flag.exitCode).toBe(1);
  expect(flag.stderr).toContain('--max-cached-workflows: must be between 2 and 100000 (got "1")');
  expect(flag.stderr).not.toMatch(START_LINE);
  const variable = await runWorker([], { AB_UPGRADE_MAX_CACHED_WORKFLOWS: 'lots' });
  expect(variable.exitCode).toBe(1);
  expect(variable.stderr).toContain('AB_UPGRADE_MAX_CACHED_WORKFLOWS');
  expect(variable.stderr).not.toMatch(START_LINE);
}, 150_000);
