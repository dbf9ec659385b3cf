// Operator-facing text for a workflow status: the phase timeline, the outcome and the downtime.
import { formatDurationMs } from './duration.js';
import type { PhaseRecord, WorkflowStatus } from './workflow-api.js';

export function formatPhase(p: PhaseRecord): string {
  const took = p.endedAt ? formatDurationMs(Date.parse(p.endedAt) - Date.parse(p.startedAt)) : 'running';
  return `  ${p.phase.padEnd(28)} ${(p.outcome ?? '…').padEnd(10)} ${took.padStart(8)}${p.detail ? `  ${p.detail}` : ''}`;
}

export function formatStatus(s: WorkflowStatus): string {
  const lines = [
    `host ${s.host}: ${s.workflowType} ${s.state}${s.fromSlot && s.toSlot ? ` (slot ${s.fromSlot} → ${s.toSlot})` : ''}, phase ${s.phase}`,
  ];
  if (s.facts) lines.push(`  running ${s.facts.distro.prettyName} on slot ${s.facts.active.name} (${s.facts.active.device}), ${s.facts.bootMode.toUpperCase()} boot`);
  if (s.install) lines.push(`  new release: ${s.install.prettyName}, kernel ${s.install.kernel}, installed in ${formatDurationMs(s.install.durationMs)}${s.install.via === 'pull' ? ' (pulled by the host)' : ''}`);
  lines.push('timeline:', ...s.timeline.map(formatPhase));
  if (s.decision) lines.push(`decision: ${s.decision.approved ? 'approved' : 'rejected'} by ${s.decision.by} (${s.decision.via})${s.decision.reason ? `: ${s.decision.reason}` : ''}`);
  if (s.downtime) {
    const d = s.downtime;
    const host = d.hostSide?.toServicesS != null ? `; host-side ${d.hostSide.toServicesS}s (sshd up after ${d.hostSide.toSshdS}s)` : '';
    lines.push(`downtime: ${formatDurationMs(d.downtimeMs)} (reboot issued → healthy; first answer after ${formatDurationMs(d.answeredAt - d.issuedAt)})${host}`);
  }
  if (s.health) for (const c of s.health.checks) lines.push(`  health ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  if (s.reason) lines.push(`reason: ${s.reason}`);
  if (s.waitingFor) lines.push(`waiting for: ${s.waitingFor}`);
  for (const n of s.notices ?? []) lines.push(`notice: ${n}`);
  return lines.join('\n');
}
