// The report as one self-contained HTML page: inline CSS and SVG, no script, no external asset.
// Every string from the model is escaped (host names, reasons, notices and operator names come
// from operators and hosts); colours and classes come only from fixed tables keyed by it.
import { formatDurationMs } from './duration.js';
import type { ApprovalView, DowntimeView, HostRunView, PhaseBar, ReportModel } from './report-model.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in HTML and SVG content and in quoted attributes; control characters become U+FFFD. */
export function esc(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd');
}

const PHASE_FILL: Record<string, string> = {
  'ok:run': '#43a047',
  'ok:wait': '#b0bec5',
  'ok:rollback': '#fb8c00',
  'ok:compensate': '#ab47bc',
  failed: '#e53935',
  'timed-out': '#f4511e',
  rejected: '#8d6e63',
  cancelled: '#757575',
  skipped: '#e0e0e0',
  open: '#1e88e5',
};
const LEGEND: [string, string][] = [
  ['ok:run', 'phase ok'],
  ['ok:wait', 'waiting (approval, operator)'],
  ['ok:rollback', 'rollback step ok'],
  ['ok:compensate', 'compensation ok'],
  ['failed', 'failed'],
  ['timed-out', 'timed out'],
  ['rejected', 'rejected'],
  ['cancelled', 'cancelled'],
  ['skipped', 'skipped'],
  ['open', 'running'],
];

function fillOf(p: PhaseBar): string {
  if (p.end === undefined) return PHASE_FILL.open!;
  if (p.outcome === 'ok') return PHASE_FILL[`ok:${p.kind}`]!;
  return PHASE_FILL[p.outcome ?? ''] ?? '#546e7a';
}

const STATE_CLASS: Record<string, string> = {
  committed: 'good',
  done: 'good',
  'rolled-back': 'warn',
  rejected: 'warn',
  busy: 'warn',
  paused: 'warn',
  'awaiting-approval': 'wait',
  'awaiting-operator': 'bad',
  'waiting-for-window': 'wait',
  failed: 'bad',
  unreachable: 'bad',
  halted: 'bad',
  cancelled: 'grey',
  skipped: 'grey',
  pending: 'grey',
  running: 'run',
};
const badge = (state: string) => `<span class="badge ${STATE_CLASS[state] ?? 'grey'}">${esc(state)}</span>`;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** "2026-12-02 08:42:15Z" */
function when(t: number | undefined): string {
  if (t === undefined || !Number.isFinite(t)) return '–';
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${clock(t, false)}Z`;
}
function clock(t: number, millis: boolean): string {
  const d = new Date(t);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${millis ? `.${pad(d.getUTCMilliseconds(), 3)}` : ''}`;
}
const took = (start: number | undefined, end: number | undefined) => (start !== undefined && end !== undefined ? formatDurationMs(Math.max(0, end - start)) : '–');
const runLabel = (r: HostRunView) => `${r.host}${r.attempt && r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`;

const STEPS_MS = [100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5];

// Timeline geometry (SVG user units; the SVG scales to the page width).
const W = 1160;
const LABEL_W = 230;
const PLOT_W = W - LABEL_W - 20;
const ROW_H = 24;
const AXIS_H = 28;

function timeline(m: ReportModel): string {
  const { start, end } = m.axis;
  const span = end - start;
  const x = (t: number) => LABEL_W + ((Math.min(Math.max(t, start), end) - start) / span) * PLOT_W;
  const step = STEPS_MS.find((s) => span / s <= 10) ?? STEPS_MS.at(-1)!;
  const ticks: string[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
    ticks.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${AXIS_H - 6}" y2="${AXIS_H + m.runs.length * ROW_H}" class="grid"/>` +
        `<text x="${x(t).toFixed(1)}" y="${AXIS_H - 10}" class="tick">${clock(t, step < 1000)}</text>`,
    );
  }
  const rows = m.runs.map((r, i) => {
    const y = AXIS_H + i * ROW_H;
    const label = runLabel(r);
    const shown = label.length > 30 ? `${label.slice(0, 29)}…` : label;
    const bars = r.phases.map((p) => {
      const x1 = x(p.start);
      const x2 = x(p.end ?? m.generatedAt);
      const tip = `${r.host} ${p.phase}: ${p.end === undefined ? 'running' : (p.outcome ?? '?')}, ${took(p.start, p.end ?? m.generatedAt)}${p.detail ? ` — ${p.detail}` : ''}`;
      const w = Math.max(2, x2 - x1);
      // The phase's name inside its bar when it fits (about 6.5 units a character).
      const name = w > p.phase.length * 6.5 + 8 ? `<text x="${(x1 + 4).toFixed(1)}" y="${y + ROW_H / 2 + 4}" class="in">${esc(p.phase)}</text>` : '';
      return `<g><rect x="${x1.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${ROW_H - 9}" fill="${fillOf(p)}"/>${name}<title>${esc(tip)}</title></g>`;
    });
    if (!r.phases.length && r.start !== undefined) {
      const x1 = x(r.start);
      const tip = `${r.host}: ${r.state}; its phases are not known (${r.problems[0] ?? 'no status'})`;
      bars.push(`<rect x="${x1.toFixed(1)}" y="${y + 4}" width="${Math.max(2, x(r.end ?? m.generatedAt) - x1).toFixed(1)}" height="${ROW_H - 9}" class="unknown"><title>${esc(tip)}</title></rect>`);
    }
    const d = r.downtime;
    const down = d
      ? `<rect x="${x(d.from).toFixed(1)}" y="${y + ROW_H - 4}" width="${Math.max(2, x(d.to) - x(d.from)).toFixed(1)}" height="3" class="down"><title>${esc(`${r.host} down (as seen by us): ${formatDurationMs(d.ourMs)}`)}</title></rect>`
      : '';
    return (
      `<g class="row">${i % 2 ? `<rect x="0" y="${y}" width="${W}" height="${ROW_H}" class="stripe"/>` : ''}` +
      `<text x="6" y="${y + ROW_H / 2 + 4}" class="host">${esc(shown)}<title>${esc(`${label}: ${r.state}`)}</title></text>` +
      `<text x="${LABEL_W - 8}" y="${y + ROW_H / 2 + 4}" class="rstate">${esc(r.wave !== undefined ? `w${r.wave}` : '')}</text>` +
      bars.join('') +
      down +
      `</g>`
    );
  });
  const h = AXIS_H + Math.max(1, m.runs.length) * ROW_H + 6;
  const legend = [
    ...LEGEND.map(([k, text]) => `<span class="key"><i style="background:${PHASE_FILL[k]}"></i>${esc(text)}</span>`),
    '<span class="key"><i class="down"></i>host down (reboot issued → healthy, as seen by us)</span>',
  ].join(' ');
  return (
    `<svg class="timeline" viewBox="0 0 ${W} ${h}" width="100%" role="img" aria-label="phases of each host on a shared time axis (UTC)" xmlns="http://www.w3.org/2000/svg">` +
    ticks.join('') +
    rows.join('') +
    `</svg><p class="legend">${legend}</p>` +
    `<p class="muted">Time axis: ${esc(when(start))} to ${esc(when(end))} (UTC), ${esc(formatDurationMs(span))}. Hover a bar for its phase, outcome, duration and detail.</p>`
  );
}

function downtimeText(d: DowntimeView | undefined): { ours: string; host: string } {
  if (!d) return { ours: '–', host: '–' };
  const ours = `${formatDurationMs(d.ourMs)}${d.source === 'timeline' ? ' (from the timeline)' : ''}`;
  const secs = (s: number | null | undefined) => (s === null || s === undefined ? '?' : `${s}s`);
  const host = d.hostToSshdS !== undefined || d.hostToServicesS !== undefined ? `sshd ${secs(d.hostToSshdS)}, services ${secs(d.hostToServicesS)}` : '–';
  return { ours, host };
}

function summary(m: ReportModel): string {
  const rows = m.runs.map((r) => {
    const d = downtimeText(r.downtime);
    return (
      `<tr><td class="name">${esc(runLabel(r))}</td><td>${esc(r.wave ?? '–')}</td><td>${badge(r.state)}</td>` +
      `<td>${esc(r.fromSlot && r.toSlot ? `${r.fromSlot} → ${r.toSlot}` : '–')}</td><td>${esc(took(r.start, r.end))}</td>` +
      `<td>${esc(d.ours)}</td><td>${esc(d.host)}</td><td class="reason">${esc(r.reason ?? r.waitingFor ?? '')}</td></tr>`
    );
  });
  return (
    `<table><thead><tr><th>host</th><th>wave</th><th>result</th><th>slot</th><th>run took</th>` +
    `<th>downtime as seen by us</th><th>downtime as seen by the host</th><th>reason</th></tr></thead><tbody>${rows.join('')}</tbody></table>` +
    `<p class="muted">As seen by us: from the reboot being issued to the health checks passing, on the controller's clock. ` +
    `As seen by the host: from its journals, shutdown starting to sshd and to the health-checked units being active. ` +
    `The workflow measures both on a committed switch; after a rollback the figure comes from the phases (reboot issued → back healthy on the old slot).</p>`
  );
}

function downtimeChart(m: ReportModel): string {
  const measured = m.runs.filter((r) => r.downtime);
  if (!measured.length) return '<p>No host rebooted.</p>';
  const max = Math.max(...measured.flatMap((r) => [r.downtime!.ourMs, (r.downtime!.hostToServicesS ?? 0) * 1000, (r.downtime!.hostToSshdS ?? 0) * 1000]), 1);
  const bw = PLOT_W - 120;
  const rows = measured.map((r, i) => {
    const d = r.downtime!;
    const y = 6 + i * 34;
    const ours = (d.ourMs / max) * bw;
    const hostMs = d.hostToServicesS ?? d.hostToSshdS;
    const host = hostMs === null || hostMs === undefined ? '' : `<rect x="${LABEL_W}" y="${y + 15}" width="${Math.max(2, ((hostMs * 1000) / max) * bw).toFixed(1)}" height="11" class="hostside"/><text x="${(LABEL_W + Math.max(2, ((hostMs * 1000) / max) * bw) + 6).toFixed(1)}" y="${y + 25}" class="val">${esc(`host ${formatDurationMs(hostMs * 1000)}`)}</text>`;
    return (
      `<text x="6" y="${y + 17}" class="host">${esc(runLabel(r).slice(0, 30))}</text>` +
      `<rect x="${LABEL_W}" y="${y}" width="${Math.max(2, ours).toFixed(1)}" height="13" class="ours"/>` +
      `<text x="${(LABEL_W + Math.max(2, ours) + 6).toFixed(1)}" y="${y + 11}" class="val">${esc(`us ${formatDurationMs(d.ourMs)}${d.source === 'timeline' ? ' (timeline)' : ''}`)}</text>` +
      host
    );
  });
  return (
    `<svg class="downtime" viewBox="0 0 ${W} ${measured.length * 34 + 10}" width="100%" role="img" aria-label="downtime per host" xmlns="http://www.w3.org/2000/svg">${rows.join('')}</svg>` +
    `<p class="legend"><span class="key"><i class="ours"></i>as seen by us</span> <span class="key"><i class="hostside"></i>as seen by the host (services active)</span></p>`
  );
}

function failures(m: ReportModel): string {
  const bad = m.runs.filter((r) => r.failures.length || r.rolledBack || (r.state !== 'committed' && r.state !== 'running' && r.state !== 'pending'));
  if (!bad.length) return '<p>None: every host run that ended committed.</p>';
  return bad
    .map((r) => {
      const steps = r.phases.filter((p) => p.kind === 'rollback' || p.kind === 'compensate' || (p.outcome && p.outcome !== 'ok' && p.outcome !== 'skipped'));
      const list = steps.map((p) => `<li><code>${esc(p.phase)}</code> ${esc(p.end === undefined ? 'running' : (p.outcome ?? '?'))}${p.detail ? `: ${esc(p.detail)}` : ''}</li>`).join('');
      return (
        `<div class="failure"><h3>${esc(runLabel(r))} ${badge(r.state)}</h3>` +
        `<p><b>Reason:</b> ${esc(r.reason ?? '(none given)')}</p>` +
        (r.rolledBack ? `<p><b>Rolled back</b>${r.fromSlot ? ` to slot ${esc(r.fromSlot)}` : ''}.</p>` : '') +
        (list ? `<ul>${list}</ul>` : '') +
        (r.notices.length ? `<ul class="notices">${r.notices.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '') +
        `</div>`
      );
    })
    .join('');
}

function approvals(rows: ApprovalView[]): string {
  if (!rows.length) return '<p>No approval or operator action recorded.</p>';
  const body = rows
    .map(
      (a) =>
        `<tr><td>${esc(when(a.at))}</td><td class="name">${esc(a.who)}</td><td>${esc(a.identity ?? '–')}</td><td>${esc(a.what)}</td>` +
        `<td>${esc(a.decision)}</td><td>${esc(a.via)}</td><td class="reason">${esc(a.reason ?? '')}</td></tr>`,
    )
    .join('');
  return (
    `<table><thead><tr><th>when (UTC)</th><th>who</th><th>sent from (Temporal client)</th><th>what</th><th>decision</th><th>via</th><th>reason</th></tr></thead><tbody>${body}</tbody></table>` +
    `<p class="muted">"who" is the name the operator's command sent (<code>--by</code>, default <code>$AB_UPGRADE_USER</code> or the login name); "sent from" is the identity the Temporal server recorded for the sending client (pid@hostname).</p>`
  );
}

function waves(m: ReportModel): string {
  if (!m.waves.length) return '';
  const rows = m.waves
    .map(
      (w) =>
        `<tr><td>${esc(w.number)}</td><td>${esc(w.round)}</td><td>${badge(w.state)}</td><td class="name">${esc(w.hosts.join(', '))}</td>` +
        `<td>${esc(w.approvedBy ?? '–')}</td><td>${esc(when(w.start))}</td><td>${esc(took(w.start, w.end))}</td><td>${esc(w.failed.join(', ') || '–')}</td></tr>`,
    )
    .join('');
  return `<section id="waves"><h2>Waves</h2><table><thead><tr><th>wave</th><th>round</th><th>state</th><th>hosts</th><th>approved by</th><th>started</th><th>took</th><th>failed</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function phaseTables(m: ReportModel): string {
  return m.runs
    .map((r) => {
      const rows = r.phases
        .map(
          (p) =>
            `<tr><td><code>${esc(p.phase)}</code></td><td>${esc(p.end === undefined ? 'running' : (p.outcome ?? '?'))}</td><td>${esc(when(p.start))}</td>` +
            `<td>${esc(took(p.start, p.end))}</td><td class="reason">${esc(p.detail ?? '')}</td></tr>`,
        )
        .join('');
      const meta = [r.workflowType, r.workflowId, r.runId && `run ${r.runId}`, r.requestedBy && `requested by ${r.requestedBy}`, r.release && `release ${r.release}`].filter(Boolean).join(' · ');
      return (
        `<details><summary>${esc(runLabel(r))} ${badge(r.state)} <span class="muted">${esc(meta)}</span></summary>` +
        (rows ? `<table><thead><tr><th>phase</th><th>outcome</th><th>started (UTC)</th><th>took</th><th>detail</th></tr></thead><tbody>${rows}</tbody></table>` : '<p>No phases recorded.</p>') +
        (r.problems.length ? `<ul class="problems">${r.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : '') +
        `</details>`
      );
    })
    .join('');
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;background:#fff;margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}h3{font-size:15px;margin:12px 0 4px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6e9ef;vertical-align:top}
th{background:#f3f5f8;font-weight:600}td.name{font-weight:600;overflow-wrap:break-word}td.reason{max-width:420px;word-break:break-word}
.badge{display:inline-block;white-space:nowrap;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:#78909c}
.badge.good{background:#2e7d32}.badge.warn{background:#ef6c00}.badge.bad{background:#c62828}.badge.wait{background:#f9a825;color:#222}.badge.run{background:#1565c0}.badge.grey{background:#78909c}
.muted{color:#5f6b7a;font-size:12.5px}.facts{margin:4px 0}.facts b{font-weight:600}
svg text{font:12px system-ui,"DejaVu Sans",sans-serif;fill:#1d2330}svg .tick{text-anchor:middle;fill:#5f6b7a;font-size:11px}
svg .grid{stroke:#e3e7ee;stroke-width:1}svg .stripe{fill:#f7f8fa}svg .rstate{text-anchor:end;fill:#5f6b7a}svg .val{font-size:11px}svg .in{fill:#fff;font-size:11px;pointer-events:none}
svg .unknown{fill:#fff;stroke:#78909c;stroke-dasharray:4 3}
svg .down,.key i.down{fill:#b71c1c;background:#b71c1c}
svg .ours,.key i.ours{fill:#3949ab;background:#3949ab}svg .hostside,.key i.hostside{fill:#00897b;background:#00897b}
.legend{margin:4px 0}.key{display:inline-block;margin-right:12px;font-size:12.5px}.key i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;border-radius:2px}
.failure{border-left:4px solid #c62828;padding:2px 12px;margin:10px 0;background:#fdf5f5}.failure ul{margin:4px 0}
details{margin:6px 0;border:1px solid #e6e9ef;border-radius:4px;padding:4px 8px}summary{cursor:pointer;font-weight:600}
ul.problems li,ul.notices li{color:#8a4b00}code{font-size:12.5px}
`;

export function renderReportHtml(m: ReportModel): string {
  const title = m.kind === 'campaign' ? `Campaign ${m.name}` : `Host ${m.name}`;
  const facts = [
    `<b>Started</b> ${esc(when(m.start))}`,
    `<b>Ended</b> ${esc(m.end === undefined ? 'not yet' : when(m.end))}`,
    m.requestedBy ? `<b>Requested by</b> ${esc(m.requestedBy)}` : '',
    m.failures ? `<b>Failures</b> ${esc(m.failures.count)} (budget ${esc(m.failures.budget)})${m.failures.hosts.length ? `: ${esc(m.failures.hosts.join(', '))}` : ''}` : '',
    m.kind === 'campaign' ? `<b>Hosts</b> ${esc(new Set(m.runs.map((r) => r.host)).size)} run${m.skipped.length ? `, skipped: ${esc(m.skipped.join(', '))}` : ''}` : '',
  ].filter(Boolean);
  const notes = [...m.notices.map((n) => `<li>${esc(n)}</li>`), ...m.problems.map((p) => `<li class="problem">${esc(p)}</li>`)];
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${esc(`ab-upgrade report: ${title}`)}</title>`,
    `<style>${CSS}</style></head><body>`,
    `<header><h1>${esc(title)} ${badge(m.state)}</h1>`,
    `<p class="facts">${facts.join(' · ')}</p>`,
    m.reason ? `<p><b>Reason:</b> ${esc(m.reason)}</p>` : '',
    m.waitingFor ? `<p><b>Waiting for:</b> ${esc(m.waitingFor)}</p>` : '',
    '</header>',
    `<section id="hosts"><h2>Hosts</h2>${summary(m)}</section>`,
    `<section id="timeline"><h2>Timeline</h2>${timeline(m)}</section>`,
    `<section id="downtime"><h2>Downtime per host</h2>${downtimeChart(m)}</section>`,
    `<section id="failures"><h2>Failures and rollbacks</h2>${failures(m)}</section>`,
    `<section id="approvals"><h2>Approvals and operator actions</h2>${approvals(m.approvals)}</section>`,
    waves(m),
    `<section id="phases"><h2>Phases of each run</h2>${phaseTables(m)}</section>`,
    notes.length ? `<section id="notices"><h2>Notices</h2><ul class="notices">${notes.join('')}</ul></section>` : '',
    `<footer><p class="muted">Generated ${esc(when(m.generatedAt))} by ab-upgrade from the Temporal workflow histories and status queries. Times are workflow times in UTC.</p></footer>`,
    '</body></html>',
    '',
  ].join('\n');
}
