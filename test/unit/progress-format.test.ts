// What `status` and `--follow` show of a running phase (client/progress-format.ts): retries with
// their last error and deadline, install progress with rate and ETA, and the redaction of what a
// retried attempt's failure might echo (client/progress-redact.ts); campaign counts.
import { describe, expect, test } from 'vitest';
import { formatBytes, formatLive, formatLiveStatus, healthProgress, installProgress, liveKey, type LiveStatus, type PendingActivity } from '../../client/progress-format.js';
import { redactSecrets } from '../../client/progress-redact.js';
import { formatCampaignCounts } from '../../lib/format-campaign.js';
import type { HostRecord } from '../../lib/campaign-api.js';

const NOW = Date.parse('2026-12-02T14:40:00.000Z');
const MiB = 1024 * 1024;

function status(over: Partial<LiveStatus> = {}): LiveStatus {
  return {
    workflowType: 'upgradeHost',
    host: 'web-1',
    phase: 'awaitComeback',
    state: 'running',
    timeline: [
      { phase: 'trialBoot', startedAt: '2026-12-02T14:39:00.000Z', endedAt: '2026-12-02T14:39:01.000Z', outcome: 'ok' },
      { phase: 'awaitComeback', startedAt: '2026-12-02T14:39:01.000Z', deadlineAt: '2026-12-02T14:44:01.000Z' },
    ],
    notices: [],
    startedAt: '2026-12-02T14:30:00.000Z',
    ...over,
  };
}

const retrying: PendingActivity = {
  activity: 'awaitComeback',
  state: 'scheduled',
  attempt: 3,
  maximumAttempts: null,
  lastError: 'ssh: connect to host 192.0.2.10 port 22: Connection refused [SshConnectError]\nsecond line',
  nextAttemptAt: '2026-12-02T14:40:02.000Z',
};

describe('installProgress', () => {
  test('a stream heartbeat: bytes of total, the average rate since the stream started, the time left at that rate', () => {
    const p = installProgress({ phase: 'stream', sent: 256 * MiB, total: 1024 * MiB, startedAt: NOW - 4000, at: NOW });
    expect(p).toEqual({ phase: 'stream', done: 256 * MiB, unit: 'bytes', total: 1024 * MiB, bytesPerSecond: 64 * MiB, etaMs: 12_000 });
  });

  test('without timestamps (an older worker) no rate; verify and debootstrap details; anything else is no progress', () => {
    expect(installProgress({ phase: 'stream', sent: 1, total: 2 })).toEqual({ phase: 'stream', done: 1, unit: 'bytes', total: 2 });
    expect(installProgress({ phase: 'verify', read: 5 * MiB })).toEqual({ phase: 'verify', done: 5 * MiB, unit: 'bytes' });
    expect(installProgress({ phase: 'debootstrap', lines: 812 })).toEqual({ phase: 'debootstrap', done: 812, unit: 'lines' });
    for (const other of [{ doneMs: 300 }, { probes: 4 }, { phase: 'stream', sent: -1, total: 2 }, { phase: 'done' }, 'x', null, undefined]) {
      expect(installProgress(other)).toBeUndefined();
    }
  });

  test('formatBytes', () => {
    expect([formatBytes(512), formatBytes(1536), formatBytes(64 * MiB), formatBytes(3 * 1024 * MiB)]).toEqual(['512 B', '1.5 KiB', '64.0 MiB', '3.0 GiB']);
  });
});

describe('formatLive', () => {
  test('a retried activity: its attempt, when the next one starts, its last error (first line); the phase deadline', () => {
    expect(formatLive(status({ activities: [retrying] }), NOW)).toEqual([
      'retrying awaitComeback: attempt 3 (no attempt limit), next attempt at 14:40:02 UTC (in 2.0s)',
      '  last error: ssh: connect to host 192.0.2.10 port 22: Connection refused [SshConnectError]',
      'deadline of awaitComeback: 14:44:01 UTC (in 4m01s)',
    ]);
  });

  test('an attempt limit, a started attempt (no next-attempt time), a deadline that passed', () => {
    const a: PendingActivity = { ...retrying, activity: 'inspectHost', state: 'started', attempt: 2, maximumAttempts: 3 };
    const s = status({ phase: 'inspect', timeline: [{ phase: 'inspect', startedAt: '2026-12-02T14:39:00.000Z', deadlineAt: '2026-12-02T14:39:30.000Z' }], activities: [a] });
    expect(formatLive(s, NOW)).toEqual([
      'retrying inspectHost: attempt 2 of 3',
      '  last error: ssh: connect to host 192.0.2.10 port 22: Connection refused [SshConnectError]',
      'deadline of inspect: 14:39:30 UTC (passed)',
    ]);
  });

  test('install progress on a first attempt; nothing for a first attempt without progress', () => {
    const install: PendingActivity = {
      activity: 'installRelease',
      state: 'started',
      attempt: 1,
      maximumAttempts: 5,
      progress: installProgress({ phase: 'stream', sent: 256 * MiB, total: 1024 * MiB, startedAt: NOW - 4000, at: NOW })!,
    };
    const quiet: PendingActivity = { activity: 'carryConfig', state: 'started', attempt: 1, maximumAttempts: 3 };
    const s = status({ phase: 'installRelease', timeline: [{ phase: 'installRelease', startedAt: '2026-12-02T14:39:00.000Z' }], activities: [install, quiet] });
    expect(formatLive(s, NOW)).toEqual(['installRelease: streaming the release: 256.0 MiB of 1.0 GiB (25%), 64.0 MiB/s, ETA 12.0s']);
  });

  test('a stream held to install.maxRate: the cap beside the rate, or alone before a rate is known', () => {
    const capped = installProgress({ phase: 'stream', sent: 32 * MiB, total: 128 * MiB, startedAt: NOW - 4000, at: NOW, maxRate: 8 * MiB });
    expect(capped).toEqual({ phase: 'stream', done: 32 * MiB, unit: 'bytes', total: 128 * MiB, bytesPerSecond: 8 * MiB, etaMs: 12_000, maxBytesPerSecond: 8 * MiB });
    const line = (progress: PendingActivity['progress']) => {
      const install: PendingActivity = { activity: 'installRelease', state: 'started', attempt: 1, maximumAttempts: 5, progress };
      return formatLive(status({ phase: 'installRelease', timeline: [{ phase: 'installRelease', startedAt: '2026-12-02T14:39:00.000Z' }], activities: [install] }), NOW);
    };
    expect(line(capped)).toEqual(['installRelease: streaming the release: 32.0 MiB of 128.0 MiB (25%), 8.0 MiB/s (capped at 8.0 MiB/s), ETA 12.0s']);
    expect(line(installProgress({ phase: 'stream', sent: 0, total: 128 * MiB, maxRate: 8 * MiB }))).toEqual(['installRelease: streaming the release: 0 B of 128.0 MiB (0%), capped at 8.0 MiB/s']);
    expect(installProgress({ phase: 'stream', sent: 0, total: 1, maxRate: 0 })).toBeUndefined();
  });

  test('the health checks on a first attempt: their round and what fails in it (an unreachable sshd too)', () => {
    const health = (failing: string[], round = 4): PendingActivity => ({
      activity: 'checkHealth',
      state: 'started',
      attempt: 1,
      maximumAttempts: 3,
      health: healthProgress({ round, failing })!,
    });
    const s = (a: PendingActivity) => status({ phase: 'checkHealth', timeline: [{ phase: 'checkHealth', startedAt: '2026-12-02T14:39:00.000Z' }], activities: [a] });
    expect(formatLive(s(health(['ssh'])), NOW)).toEqual(['checkHealth: round 4, failing: ssh']);
    expect(formatLive(s(health(['system booted', 'unit nginx.service'])), NOW)).toEqual(['checkHealth: round 4, failing: system booted, unit nginx.service']);
    expect(formatLive(s(health([], 1)), NOW)).toEqual(['checkHealth: round 1, all passing']);
    expect(liveKey(s(health(['ssh'], 5)))).not.toBe(liveKey(s(health(['ssh'], 4))));
    for (const other of [{ round: 0, failing: [] }, { round: 2 }, { round: 2, failing: [3] }, { probes: 4 }, { phase: 'stream', sent: 1, total: 2 }, null]) {
      expect(healthProgress(other)).toBeUndefined();
    }
  });

  test('formatLiveStatus adds the live lines under "now:" while running, none once ended', () => {
    const running = formatLiveStatus(status({ activities: [retrying] }), NOW).split('\n');
    expect(running.slice(running.indexOf('now:'))).toEqual([
      'now:',
      '  retrying awaitComeback: attempt 3 (no attempt limit), next attempt at 14:40:02 UTC (in 2.0s)',
      '    last error: ssh: connect to host 192.0.2.10 port 22: Connection refused [SshConnectError]',
      '  deadline of awaitComeback: 14:44:01 UTC (in 4m01s)',
    ]);
    expect(formatLiveStatus(status({ state: 'committed', activities: [retrying] }), NOW)).not.toContain('now:');
  });

  test('liveKey changes with the attempt and the progress, not with the clock', () => {
    const k = liveKey(status({ activities: [retrying] }));
    expect(liveKey(status({ activities: [{ ...retrying }] }))).toBe(k);
    expect(liveKey(status({ activities: [{ ...retrying, attempt: 4 }] }))).not.toBe(k);
    expect(liveKey(status())).not.toBe(k);
  });
});

describe('redactSecrets', () => {
  test.each([
    ['curl: (22) https://ops:hunter2-secret@bmc.example/redfish failed', 'curl: (22) https://[redacted]@bmc.example/redfish failed'],
    ['authorization: Bearer eyJhbGciOi.payload.sig', 'authorization: Bearer [redacted]'],
    ['sent Bearer abcdefgh12345678', 'sent Bearer [redacted]'],
    ['ipmitool -U admin password=s3cr3t-value -H bmc', 'ipmitool -U admin password=[redacted] -H bmc'],
    ['token: "a b c"', 'token: [redacted]'],
    ['key -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA\n-----END OPENSSH PRIVATE KEY----- tail', 'key [private key redacted] tail'],
    ['-----BEGIN PRIVATE KEY-----\ncut short', '[private key redacted]'],
  ])('%j', (input, out) => {
    expect(redactSecrets(input)).toBe(out);
  });

  test('leaves ordinary failures alone', () => {
    const msg = 'Command failed with exit code 1: mkfs.ext4 -F -L ab-slot-b /dev/vda3\nmke2fs: Device or resource busy';
    expect(redactSecrets(msg)).toBe(msg);
  });
});

test('formatCampaignCounts: states in a fixed order, then the rest alphabetically', () => {
  const h = (name: string, state: HostRecord['state']): HostRecord => ({ name, state, workflowId: `ab-upgrade/${name}`, attempts: 1 });
  expect(formatCampaignCounts({ hosts: [h('a', 'pending'), h('b', 'committed'), h('c', 'rolled-back'), h('d', 'committed'), h('e', 'running'), h('f', 'busy')] })).toBe(
    'hosts: 2 committed, 1 running, 1 pending, 1 busy, 1 rolled-back (6 in all)',
  );
  expect(formatCampaignCounts({ hosts: [] })).toBe('hosts: none (0 in all)');
});
