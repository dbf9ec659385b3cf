// `ab-upgrade status` while a phase is retried or streaming (client/progress.ts), through the real
// CLI in this process against the dev server: a comeback poll that fails three times shows its attempt,
// its last error (redacted) and the comeback deadline in `status --json` and plain `status`; an
// install's stream heartbeats show bytes, rate and ETA, in `status` and in `follow`.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { afterAll, beforeAll, expect, test, vi } from 'vitest';
import { main } from '../../client/cli.js';
import { follow } from '../../client/follow.js';
import type { LiveStatus } from '../../client/progress-format.js';
import { withLive } from '../../client/progress.js';
import type { HostActivities } from '../../lib/contract.js';
import { startOptions, statusQuery } from '../../lib/workflow-api.js';
import { upgradeHost } from '../../workflows/index.js';
import { eventually, fakeProfile, fakeWorker, newFake, setupWorkflowEnv, uniqueName, type WorkflowEnv } from '../helpers/workflow-env.js';

let env: WorkflowEnv;
beforeAll(async () => {
  env = await setupWorkflowEnv();
});
afterAll(async () => {
  await env?.close();
});

/** Runs `ab-upgrade --address <dev server> status <host> [--json]` here; its stdout. */
async function cliStatus(host: string, json: boolean): Promise<string> {
  const out: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    await main(['node', 'ab-upgrade', '--address', env.address, 'status', host, ...(json ? ['--json'] : [])]);
  } finally {
    log.mockRestore();
    err.mockRestore();
    process.exitCode = 0;
  }
  return out.join('\n');
}

const SECRET = 'hunter2-not-for-eyes';

test('a comeback poll that keeps failing: attempt, last error and the deadline in status --json and status', async () => {
  const fake = newFake();
  const profile = fakeProfile({ timings: { approvalTimeout: '5s', comebackDeadline: '30s', pollInterval: '100ms', healthTimeout: '5s' } });
  const acts = fake.activities();
  let failures = 0;
  const activities: HostActivities = {
    ...acts,
    // Retryable, as a refused SSH connection is; what a BMC URL with credentials would look like in it.
    awaitComeback: async (...args) => {
      if (failures++ < 3) throw ApplicationFailure.retryable(`ssh: connect to host 192.0.2.10 port 22: Connection refused (via https://ops:${SECRET}@bmc.example/)`, 'SshConnectError');
      return acts.awaitComeback(...args);
    },
  };
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, { activities: () => activities }, taskQueue);
  try {
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, requestedBy: 'test' }] });
      // The window: the 1, 2 and 4 s waits before attempts 2, 3 and 4 (a loaded machine is slow to ask).
      const { json, text } = await eventually(async () => {
        const json = JSON.parse((await cliStatus(profile.name, true)) || '{}') as LiveStatus;
        if (!json.activities?.some((a) => a.activity === 'awaitComeback' && a.attempt >= 2)) return undefined;
        const text = await cliStatus(profile.name, false);
        return text.includes('retrying awaitComeback') ? { json, text } : undefined;
      }, 20_000, 150);
      const a = json.activities!.find((x) => x.activity === 'awaitComeback')!;
      expect(json.state).toBe('running');
      expect(json.phase).toBe('awaitComeback');
      expect(a.attempt).toBeGreaterThanOrEqual(2);
      expect(a.maximumAttempts).toBeNull(); // bounded by the workflow's deadline instead
      expect(a.lastError).toBe('ssh: connect to host 192.0.2.10 port 22: Connection refused (via https://[redacted]@bmc.example/) [SshConnectError]');
      const deadline = json.timeline.at(-1)!;
      expect(deadline.phase).toBe('awaitComeback');
      const left = Date.parse(deadline.deadlineAt!) - Date.now();
      expect(left).toBeGreaterThan(15_000);
      expect(left).toBeLessThanOrEqual(30_000);

      expect(text).toMatch(/^now:$/m);
      expect(text).toMatch(/^ {2}retrying awaitComeback: attempt \d+ \(no attempt limit\)/m);
      expect(text).toContain('last error: ssh: connect to host 192.0.2.10 port 22: Connection refused');
      expect(text).toMatch(/^ {2}deadline of awaitComeback: \d\d:\d\d:\d\d UTC \(in \d+\.\ds\)$/m);
      for (const out of [JSON.stringify(json), text]) expect(out).not.toContain(SECRET);

      expect((await handle.result()).state).toBe('committed');
      // Once ended, the live part is gone.
      expect(await cliStatus(profile.name, false)).not.toContain('now:');
    });
  } finally {
    fake.dispose();
  }
});

test('an image stream: bytes, rate and ETA from its heartbeats, in status and in follow', async () => {
  const fake = newFake();
  const profile = fakeProfile();
  const acts = fake.activities();
  const total = 1024 * 1024 * 1024;
  const activities: HostActivities = {
    ...acts,
    // Heartbeats as activities/release.ts streams: sent of total, with its own start and clock.
    installRelease: async (...args) => {
      const ctx = Context.current();
      const startedAt = Date.now();
      for (let i = 1; i <= 20; i++) {
        await ctx.sleep(100);
        ctx.heartbeat({ phase: 'stream', sent: (i * total) / 40, total, startedAt, at: Date.now() });
      }
      return acts.installRelease(...args);
    },
  };
  const taskQueue = uniqueName('tq');
  const worker = await fakeWorker(env, { activities: () => activities }, taskQueue);
  try {
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(upgradeHost, { ...startOptions(profile, taskQueue), args: [{ profile, autoApprove: true, requestedBy: 'test' }] });
      const printed: string[] = [];
      const following = follow(async () => withLive(env.client, profile.name, await handle.query(statusQuery)), (l) => printed.push(l));
      const text = await eventually(async () => {
        const t = await cliStatus(profile.name, false);
        return /installRelease: streaming the release: [\d.]+ MiB of 1\.0 GiB \(\d+%\), [\d.]+ [KMG]iB\/s, ETA [\d.]+m?s/.test(t) ? t : undefined;
      }, 20_000, 100);
      expect(text).toMatch(/^now:$/m);
      const final = await following;
      expect(final.state).toBe('committed');
      expect(printed.some((l) => /^ {4}installRelease: streaming the release: .* of 1\.0 GiB .*\/s, ETA /.test(l))).toBe(true);
      // Printed when the progress changed, not on every poll.
      const lines = printed.filter((l) => l.includes('streaming the release'));
      expect(new Set(lines).size).toBe(lines.length);
    });
  } finally {
    fake.dispose();
  }
});
