// The report of a campaign or of one host's run, built from what Temporal holds: the statuses the
// workflows returned or answer (lib/report-schema.ts checks them) and the operators' messages in
// their histories (lib/report-history.ts). Pure; lib/report-html.ts renders it.
import type { HistoryFacts, OperatorMessage } from './report-history.js';
import {
  byInputSchema,
  campaignStatusSchema,
  check,
  hostStatusSchema,
  type ByInputData,
  type CampaignStatusData,
  type HostStatusData,
} from './report-schema.js';

export type PhaseKind = 'run' | 'wait' | 'rollback' | 'compensate';

export interface PhaseBar {
  phase: string;
  kind: PhaseKind;
  /** Epoch ms (workflow time). */
  start: number;
  /** Undefined while it runs. */
  end?: number;
  outcome?: string;
  detail?: string;
}

export interface DowntimeView {
  /** measured: the workflow's own figures (a committed switch); timeline: reboot issued → back healthy, from the phases. */
  source: 'measured' | 'timeline';
  /** As seen by us (the controller): reboot issued → healthy, epoch ms. */
  from: number;
  to: number;
  ourMs: number;
  /** Reboot issued → first answer of the new boot (measured only). */
  firstAnswerMs?: number;
  /** As seen by the host, from its journals: shutdown starts → sshd / the health-checked units active (seconds). */
  hostToSshdS?: number | null;
  hostToServicesS?: number | null;
}

export interface HostRunView {
  host: string;
  workflowId: string;
  runId?: string;
  workflowType?: string;
  wave?: number;
  attempt?: number;
  state: string;
  reason?: string;
  waitingFor?: string;
  requestedBy?: string;
  fromSlot?: string;
  toSlot?: string;
  release?: string;
  start?: number;
  end?: number;
  phases: PhaseBar[];
  downtime?: DowntimeView;
  /** Phases that ended other than ok or skipped, in order. */
  failures: { phase: string; outcome: string; detail?: string }[];
  rolledBack: boolean;
  notices: string[];
  /** Why part of this run is missing from the report (no status, an unreadable one). */
  problems: string[];
}

export interface ApprovalView {
  at?: number;
  who: string;
  /** The Temporal client identity that sent it (pid@hostname unless the client set another). */
  identity?: string;
  what: string;
  decision: string;
  via: string;
  reason?: string;
}

export interface WaveView {
  number: number;
  round: number;
  hosts: string[];
  state: string;
  approvedBy?: string;
  start?: number;
  end?: number;
  failed: string[];
}

export interface ReportModel {
  kind: 'campaign' | 'host';
  /** The campaign's or the host's name. */
  name: string;
  state: string;
  reason?: string;
  waitingFor?: string;
  requestedBy?: string;
  start: number;
  end?: number;
  generatedAt: number;
  /** The time axis every timeline shares. */
  axis: { start: number; end: number };
  failures?: { count: number; budget: number; hosts: string[] };
  waves: WaveView[];
  runs: HostRunView[];
  /** Hosts the campaign lists but never starts. */
  skipped: string[];
  approvals: ApprovalView[];
  notices: string[];
  problems: string[];
}

const ms = (iso: string | undefined): number | undefined => (iso === undefined ? undefined : Date.parse(iso));
const REBOOTS = new Set(['trialBoot', 'rebootToSlot']);

function phaseKind(phase: string): PhaseKind {
  if (phase === 'approval' || phase === 'rollback.awaitOperator') return 'wait';
  if (phase.startsWith('rollback.')) return 'rollback';
  if (phase.startsWith('compensate.')) return 'compensate';
  return 'run';
}

function downtimeOf(s: HostStatusData): DowntimeView | undefined {
  const d = s.downtime;
  if (d) {
    return {
      source: 'measured',
      from: d.issuedAt,
      to: d.healthyAt,
      ourMs: d.downtimeMs,
      firstAnswerMs: d.answeredAt - d.issuedAt,
      ...(d.hostSide ? { hostToSshdS: d.hostSide.toSshdS, hostToServicesS: d.hostSide.toServicesS } : {}),
    };
  }
  // No figures unless the switch committed: after a rollback, the phases still tell when the
  // reboot went out and when the host was back and healthy on its old slot.
  const reboot = s.timeline.find((p) => REBOOTS.has(p.phase) && p.outcome === 'ok' && p.endedAt);
  const back = [...s.timeline].reverse().find((p) => (p.phase === 'rollback.checkHealth' || p.phase === 'rollback.awaitComeback') && p.outcome === 'ok' && p.endedAt);
  if (!reboot || !back) return undefined;
  const from = Date.parse(reboot.endedAt!);
  const to = Date.parse(back.endedAt!);
  return { source: 'timeline', from, to, ourMs: to - from };
}

/** One host run's view from its status (unknown: checked here; a bad one becomes a problem on the row). */
export function hostRunView(
  status: unknown,
  o: { host: string; workflowId: string; runId?: string; wave?: number; attempt?: number; state?: string; reason?: string; start?: number; end?: number },
): HostRunView {
  const base: HostRunView = {
    host: o.host,
    workflowId: o.workflowId,
    ...(o.runId ? { runId: o.runId } : {}),
    ...(o.wave !== undefined ? { wave: o.wave } : {}),
    ...(o.attempt !== undefined ? { attempt: o.attempt } : {}),
    state: o.state ?? 'unknown',
    ...(o.reason ? { reason: o.reason } : {}),
    ...(o.start !== undefined ? { start: o.start } : {}),
    ...(o.end !== undefined ? { end: o.end } : {}),
    phases: [],
    failures: [],
    rolledBack: false,
    notices: [],
    problems: [],
  };
  if (status === undefined) {
    base.problems.push('no status: the run has not reported one (a cancelled run needs a worker to answer the status query)');
    return base;
  }
  const c = check(hostStatusSchema, status, `status of ${o.host}`);
  if (!c.ok) return { ...base, problems: [c.problem] };
  const s = c.value;
  const phases: PhaseBar[] = s.timeline.map((p) => ({
    phase: p.phase,
    kind: phaseKind(p.phase),
    start: Date.parse(p.startedAt),
    ...(p.endedAt ? { end: Date.parse(p.endedAt) } : {}),
    ...(p.outcome ? { outcome: p.outcome } : {}),
    ...(p.detail ? { detail: p.detail } : {}),
  }));
  const downtime = downtimeOf(s);
  return {
    ...base,
    host: s.host,
    workflowType: s.workflowType,
    state: s.state,
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.waitingFor ? { waitingFor: s.waitingFor } : {}),
    ...(s.requestedBy ? { requestedBy: s.requestedBy } : {}),
    ...(s.fromSlot ? { fromSlot: s.fromSlot } : {}),
    ...(s.toSlot ? { toSlot: s.toSlot } : {}),
    ...(s.install ? { release: s.install.prettyName } : {}),
    start: Date.parse(s.startedAt),
    ...(s.endedAt ? { end: Date.parse(s.endedAt) } : {}),
    phases,
    ...(downtime ? { downtime } : {}),
    failures: phases.filter((p) => p.outcome && p.outcome !== 'ok' && p.outcome !== 'skipped').map((p) => ({ phase: p.phase, outcome: p.outcome!, ...(p.detail ? { detail: p.detail } : {}) })),
    rolledBack: s.state === 'rolled-back' || phases.some((p) => p.kind === 'rollback'),
    notices: s.notices,
  };
}

type Said = OperatorMessage & { by: ByInputData };

/** The messages whose input is a valid {"by", ...}; the others are counted as problems. */
function said(messages: OperatorMessage[], problems: string[]): Said[] {
  const out: Said[] = [];
  for (const m of messages) {
    if (m.via === 'cancel') continue;
    const c = check(byInputSchema, m.input, `${m.via} ${m.name} at ${new Date(m.at).toISOString()}`);
    if (c.ok) out.push({ ...m, by: c.value });
    else problems.push(`${c.problem} (the workflow ignored it)`);
  }
  return out;
}

/** Who approved or rejected a host's reboot, and who said it was recovered by hand. */
function hostApprovals(run: HostRunView, status: HostStatusData | undefined, messages: Said[]): ApprovalView[] {
  const rows: ApprovalView[] = [];
  const d = status?.decision;
  const what = `${run.workflowType === 'rollbackHost' ? 'rollback' : 'reboot'} of ${run.host}${run.toSlot ? ` into slot ${run.toSlot}` : ''}`;
  if (d) {
    const sent = messages.find((m) => (m.name === 'approve' || m.name === 'reject') && m.by.by === d.by && m.via === d.via);
    const decision = d.via === 'timeout' ? 'timed out' : d.via === 'auto' ? 'approved in advance' : d.approved ? 'approved' : 'rejected';
    rows.push({ at: Date.parse(d.at), who: d.by, ...(sent?.identity ? { identity: sent.identity } : {}), what, decision, via: d.via, ...(d.reason ? { reason: d.reason } : {}) });
  }
  for (const m of messages.filter((x) => x.name === 'hostRecovered')) {
    rows.push({ at: m.at, who: m.by.by, ...(m.identity ? { identity: m.identity } : {}), what: `${run.host} reset by hand`, decision: 'recovered', via: m.via, ...(m.by.note ? { reason: m.by.note } : {}) });
  }
  return rows;
}

function axisOf(start: number, runs: HostRunView[], end: number): { start: number; end: number } {
  const times = runs.flatMap((r) => [r.start, r.end, ...r.phases.flatMap((p) => [p.start, p.end])]).filter((t): t is number => t !== undefined && Number.isFinite(t));
  const lo = Math.min(start, ...times);
  const hi = Math.max(end, ...times);
  return { start: lo, end: hi > lo ? hi : lo + 1000 };
}

/** The report of one host's run: its status (live or final) and, if fetched, its history. */
export function hostReport(input: { status: unknown; workflowId: string; runId?: string; history?: HistoryFacts; now: number }): ReportModel {
  const problems: string[] = [];
  const run = hostRunView(input.status, { host: input.workflowId.replace(/^ab-upgrade\//, ''), workflowId: input.workflowId, ...(input.runId ? { runId: input.runId } : {}) });
  problems.push(...run.problems);
  const checked = check(hostStatusSchema, input.status, 'status');
  const status = checked.ok ? checked.value : undefined;
  const messages = said(input.history?.messages ?? [], problems);
  const end = run.end ?? input.now;
  return {
    kind: 'host',
    name: run.host,
    state: run.state,
    ...(run.reason ? { reason: run.reason } : {}),
    ...(run.waitingFor ? { waitingFor: run.waitingFor } : {}),
    ...(run.requestedBy ? { requestedBy: run.requestedBy } : {}),
    start: run.start ?? input.history?.startedAt ?? input.now,
    ...(run.end !== undefined ? { end: run.end } : {}),
    generatedAt: input.now,
    axis: axisOf(run.start ?? input.now, [run], end),
    waves: [],
    runs: [run],
    skipped: [],
    approvals: hostApprovals(run, status, messages).sort((a, b) => (a.at ?? 0) - (b.at ?? 0)),
    notices: [],
    problems,
  };
}

/** Whether a host run's status shows it waited for an operator's hand reset (its history then names who). */
export function waitedForOperator(status: unknown): boolean {
  const c = check(hostStatusSchema, status, 'status');
  return c.ok && c.value.timeline.some((p) => p.phase === 'rollback.awaitOperator');
}

export interface CampaignReportInput {
  /** The campaign's status: its result, or the live answer of its status query. */
  status: unknown;
  /** The histories of the campaign's runs, oldest first (more than one after continue-as-new). */
  histories: HistoryFacts[];
  /** Statuses of host runs the histories hold no result for (still running, or cancelled), by run id. */
  live: ReadonlyMap<string, unknown>;
  /** Operators' messages to host runs, by run id (read for runs that waited for an operator). */
  runMessages?: ReadonlyMap<string, OperatorMessage[]>;
  now: number;
}

/** The report of a campaign: every host run its histories started (retries included), in start order. */
export function campaignReport(input: CampaignReportInput): ReportModel {
  const checked = check(campaignStatusSchema, input.status, 'campaign status');
  if (!checked.ok) throw new Error(checked.problem);
  const c = checked.value;
  const problems: string[] = [];
  const waves = c.waves.map(
    (w): WaveView => ({
      number: w.number,
      round: w.round,
      hosts: w.hosts,
      state: w.state,
      ...(w.approvedBy ? { approvedBy: w.approvedBy } : {}),
      ...(w.startedAt ? { start: Date.parse(w.startedAt) } : {}),
      ...(w.endedAt ? { end: Date.parse(w.endedAt) } : {}),
      failed: w.failed ?? [],
    }),
  );
  const record = new Map(c.hosts.map((h) => [h.name, h]));
  const children = input.histories.flatMap((h) => h.children).filter((ch) => ch.workflowType === 'upgradeHost');
  const attempts = new Map<string, number>();
  const runs: HostRunView[] = [];
  const statuses = new Map<HostRunView, HostStatusData>();
  const seen = new Set<string>();
  for (const ch of children.sort((a, b) => a.startedAt - b.startedAt)) {
    seen.add(ch.runId);
    const host = ch.workflowId.replace(/^ab-upgrade\//, '');
    const attempt = (attempts.get(host) ?? 0) + 1;
    attempts.set(host, attempt);
    const rec = record.get(host);
    const latest = rec?.runId === ch.runId;
    const status = input.live.get(ch.runId) ?? ch.result;
    const run = hostRunView(status, {
      host,
      workflowId: ch.workflowId,
      runId: ch.runId,
      attempt,
      ...waveOf(waves, host, ch.startedAt, latest ? rec?.wave : undefined),
      state: latest ? rec!.state : ch.close,
      start: ch.startedAt,
      ...(ch.closedAt !== undefined ? { end: ch.closedAt } : {}),
      ...(ch.failure ? { reason: ch.failure } : latest && rec?.reason ? { reason: rec.reason } : {}),
    });
    if (status === undefined && ch.close === 'cancelled') run.state = 'cancelled';
    runs.push(run);
    const s = check(hostStatusSchema, status, 'status');
    if (s.ok) statuses.set(run, s.value);
  }
  const skipped: string[] = [];
  for (const h of c.hosts) {
    if (h.state === 'skipped') skipped.push(h.name);
    else if (!h.runId || !seen.has(h.runId)) {
      // Not started (pending, busy), or started by a run whose history was not read.
      const status = h.runId ? input.live.get(h.runId) : undefined;
      const run = hostRunView(status, { host: h.name, workflowId: h.workflowId, ...(h.runId ? { runId: h.runId } : {}), attempt: h.attempts || undefined, ...(h.wave !== undefined ? { wave: h.wave } : {}), state: h.state, ...(h.reason ? { reason: h.reason } : {}) });
      if (!h.runId) run.problems = [];
      runs.push(run);
    }
  }

  const messages = said(input.histories.flatMap((h) => h.messages), problems);
  const approvals: ApprovalView[] = [];
  const start = Date.parse(c.startedAt);
  approvals.push({ at: start, who: c.requestedBy ?? '?', what: `campaign ${c.campaign} started (its first wave needs no other approval)`, decision: 'started', via: 'start' });
  const used = new Set<Said>();
  for (const w of waves.filter((x) => x.approvedBy)) {
    const sent = messages
      // The event is written once the workflow task that accepted it completes, a little after
      // the wave starts on workflow time: the last such approval before the wave ended.
      .filter((m) => m.name === 'approveWave' && m.by.by === w.approvedBy && !used.has(m) && (w.end === undefined || m.at <= w.end) && (m.by.wave === undefined || m.by.wave === w.number))
      .at(-1);
    if (sent) used.add(sent);
    approvals.push({
      ...(sent ? { at: sent.at } : {}),
      who: w.approvedBy!,
      ...(sent?.identity ? { identity: sent.identity } : {}),
      what: `wave ${w.number} (${w.hosts.join(', ')})`,
      decision: 'approved',
      via: sent?.via ?? 'update',
      ...(sent?.by.reason ? { reason: sent.by.reason } : {}),
    });
  }
  const verbs: Record<string, [string, string]> = {
    retryFailed: ['retry the failed hosts', 'retry asked'],
    pause: ['pause the campaign', 'pause'],
    resume: ['resume the campaign', 'resume'],
  };
  for (const m of messages) {
    const v = verbs[m.name];
    if (v) approvals.push({ at: m.at, who: m.by.by, ...(m.identity ? { identity: m.identity } : {}), what: v[0], decision: v[1], via: m.via, ...(m.by.reason ? { reason: m.by.reason } : {}) });
  }
  for (const h of input.histories) {
    const cancel = h.messages.find((m) => m.name === 'cancel');
    if (cancel) approvals.push({ at: cancel.at, who: cancel.identity ?? '?', what: `cancel campaign ${c.campaign}`, decision: 'cancel requested', via: 'cancel' });
  }
  for (const [run, s] of statuses) {
    const sent = said(input.runMessages?.get(run.runId ?? '') ?? [], problems);
    approvals.push(...hostApprovals(run, s, sent).filter((a) => a.via !== 'auto'));
  }
  approvals.sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity));

  const end = Date.parse(c.endedAt ?? '') || input.now;
  return {
    kind: 'campaign',
    name: c.campaign,
    state: c.state,
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.waitingFor ? { waitingFor: c.waitingFor } : {}),
    ...(c.requestedBy ? { requestedBy: c.requestedBy } : {}),
    start,
    ...(c.endedAt ? { end: Date.parse(c.endedAt) } : {}),
    generatedAt: input.now,
    axis: axisOf(start, runs, end),
    failures: c.failures,
    waves,
    runs,
    skipped,
    approvals,
    notices: c.notices,
    problems: [...problems, ...runs.flatMap((r) => r.problems.map((p) => `${r.host}${r.attempt ? ` (attempt ${r.attempt})` : ''}: ${p}`))],
  };
}

/** The wave a host's run belonged to: the latest wave listing the host that started by then. */
function waveOf(waves: WaveView[], host: string, at: number, known?: number): { wave?: number } {
  if (known !== undefined) return { wave: known };
  const w = waves.filter((x) => x.hosts.includes(host) && x.start !== undefined && x.start <= at).sort((a, b) => a.start! - b.start!).at(-1);
  return w ? { wave: w.number } : {};
}
