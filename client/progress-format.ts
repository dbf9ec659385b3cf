// What a running phase is doing right now, as `status` and `--follow` show it: the activity's
// attempt and last error while Temporal retries it, the time left to the phase's deadline, and
// the install's progress (bytes streamed, rate, ETA) and the health checks' round from their
// heartbeat details. Pure: the figures come from client/progress.ts.
import { z } from 'zod';
import { formatDurationMs } from '../lib/duration.js';
import { formatStatus } from '../lib/format-status.js';
import { isFinalState, type WorkflowStatus } from '../lib/workflow-api.js';

/** The install's progress from its heartbeat details (activities/release.ts). */
export interface InstallProgress {
  phase: 'verify' | 'stream' | 'debootstrap';
  /** Bytes verified or streamed, or debootstrap's lines of output. */
  done: number;
  unit: 'bytes' | 'lines';
  /** Bytes to stream in all (stream only). */
  total?: number;
  /** Average since the stream started (stream only, once a heartbeat says when). */
  bytesPerSecond?: number;
  /** At that rate, from the last heartbeat. */
  etaMs?: number;
  /** install.maxRate, the cap the controller holds the stream to (stream only). */
  maxBytesPerSecond?: number;
}

/** A pending activity of the workflow, as the server describes it. */
export interface PendingActivity {
  activity: string;
  state: 'scheduled' | 'started' | 'cancel-requested' | 'paused' | 'unknown';
  /** 1 for the first attempt; 2 and more: Temporal is retrying it. */
  attempt: number;
  /** null: no limit (the workflow's own deadline bounds it). */
  maximumAttempts: number | null;
  /** The previous attempt's failure, secrets redacted (client/progress-redact.ts). */
  lastError?: string;
  lastStartedAt?: string;
  lastHeartbeatAt?: string;
  /** When the next attempt starts (while waiting between attempts). */
  nextAttemptAt?: string;
  /** When Temporal gives up on it (schedule-to-close), if it has such a bound. */
  expiresAt?: string;
  progress?: InstallProgress;
  health?: HealthProgress;
}

/** The health checks' progress from their heartbeat details (activities/health.ts): the round, and which checks fail in it. */
export interface HealthProgress {
  round: number;
  failing: string[];
}

/** The status query's answer plus what only the server knows while the workflow runs. */
export type LiveStatus = WorkflowStatus & { activities?: PendingActivity[] };

const count = z.number().finite().nonnegative();
const epochMs = z.number().finite().positive();
const DETAILS = z.discriminatedUnion('phase', [
  z.object({ phase: z.literal('stream'), sent: count, total: count, startedAt: epochMs.optional(), at: epochMs.optional(), maxRate: z.number().finite().positive().optional() }),
  z.object({ phase: z.literal('verify'), read: count }),
  z.object({ phase: z.literal('debootstrap'), lines: count }),
]);

/** The install's progress from heartbeat details; undefined for any other activity's details. */
export function installProgress(details: unknown): InstallProgress | undefined {
  const r = DETAILS.safeParse(details);
  if (!r.success) return undefined;
  const d = r.data;
  if (d.phase === 'verify') return { phase: 'verify', done: d.read, unit: 'bytes' };
  if (d.phase === 'debootstrap') return { phase: 'debootstrap', done: d.lines, unit: 'lines' };
  const p: InstallProgress = { phase: 'stream', done: d.sent, unit: 'bytes', total: d.total, ...(d.maxRate !== undefined ? { maxBytesPerSecond: d.maxRate } : {}) };
  if (d.startedAt !== undefined && d.at !== undefined && d.at > d.startedAt && d.sent > 0) {
    p.bytesPerSecond = d.sent / ((d.at - d.startedAt) / 1000);
    p.etaMs = (Math.max(0, d.total - d.sent) / p.bytesPerSecond) * 1000;
  }
  return p;
}

const HEALTH_DETAILS = z.strictObject({ round: z.number().int().positive(), failing: z.array(z.string().max(300)).max(100) });

/** The health checks' progress from heartbeat details; undefined for any other activity's details. */
export function healthProgress(details: unknown): HealthProgress | undefined {
  const r = HEALTH_DETAILS.safeParse(details);
  return r.success ? r.data : undefined;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

function formatProgress(p: InstallProgress): string {
  if (p.phase === 'debootstrap') return `debootstrap: ${p.done} lines of output`;
  if (p.phase === 'verify') return `verifying the image: ${formatBytes(p.done)} read`;
  const pct = p.total ? ` (${Math.floor((100 * p.done) / p.total)}%)` : '';
  const cap = p.maxBytesPerSecond !== undefined ? `capped at ${formatBytes(p.maxBytesPerSecond)}/s` : '';
  const rate = p.bytesPerSecond !== undefined ? `, ${formatBytes(p.bytesPerSecond)}/s${cap && ` (${cap})`}` : cap && `, ${cap}`;
  const eta = p.etaMs !== undefined ? `, ETA ${formatDurationMs(p.etaMs)}` : '';
  return `streaming the release: ${formatBytes(p.done)} of ${formatBytes(p.total ?? 0)}${pct}${rate}${eta}`;
}

/** "14:40:12 UTC (in 24.0s)", or "(passed)". */
function when(iso: string, now: number): string {
  const left = Date.parse(iso) - now;
  return `${iso.slice(11, 19)} UTC (${left > 0 ? `in ${formatDurationMs(left)}` : 'passed'})`;
}

/** A multi-line message's first line, at most `max` characters. */
function brief(text: string, max = 240): string {
  const first = text.split('\n')[0]!.trim();
  return first.length > max ? `${first.slice(0, max)}…` : first;
}

/** The running phase's deadline (the comeback watch's), if it has one and the run goes on. */
function runningDeadline(s: WorkflowStatus): string | undefined {
  const last = s.timeline[s.timeline.length - 1];
  return last && !last.endedAt ? last.deadlineAt : undefined;
}

/**
 * Lines for the pending activities and the running phase's deadline: nothing for an activity on
 * its first attempt without progress to report (the timeline says "running").
 */
export function formatLive(s: LiveStatus, now: number): string[] {
  const lines: string[] = [];
  for (const a of s.activities ?? []) {
    const retrying = a.attempt >= 2;
    if (!retrying && !a.progress && !a.health) continue;
    if (retrying) {
      const of = a.maximumAttempts ? ` of ${a.maximumAttempts}` : ' (no attempt limit)';
      const next = a.nextAttemptAt && a.state === 'scheduled' ? `, next attempt at ${when(a.nextAttemptAt, now)}` : '';
      lines.push(`retrying ${a.activity}: attempt ${a.attempt}${of}${next}`);
      if (a.lastError) lines.push(`  last error: ${brief(a.lastError)}`);
    }
    if (a.progress) lines.push(`${retrying ? '  ' : ''}${a.activity}: ${formatProgress(a.progress)}`);
    if (a.health) lines.push(`${retrying ? '  ' : ''}${a.activity}: round ${a.health.round}, ${a.health.failing.length ? `failing: ${a.health.failing.join(', ')}` : 'all passing'}`);
    if (a.expiresAt) lines.push(`  Temporal gives up on it at ${when(a.expiresAt, now)}`);
  }
  const deadline = runningDeadline(s);
  if (deadline) lines.push(`deadline of ${s.phase}: ${when(deadline, now)}`);
  return lines;
}

/** What changed in the live lines worth printing again while following (not the countdowns). */
export function liveKey(s: LiveStatus): string {
  return JSON.stringify([
    (s.activities ?? []).map((a) => [a.activity, a.attempt, a.state, a.lastError, a.lastHeartbeatAt, a.progress?.done, a.health?.round]),
    runningDeadline(s),
  ]);
}

/** `status`'s text: the status, then what the running phase is doing. */
export function formatLiveStatus(s: LiveStatus, now = Date.now()): string {
  const live = isFinalState(s.state) ? [] : formatLive(s, now);
  return [formatStatus(s), ...(live.length ? ['now:', ...live.map((l) => `  ${l}`)] : [])].join('\n');
}
