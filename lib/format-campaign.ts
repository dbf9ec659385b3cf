// Operator-facing text for a campaign status: state, waves with their hosts, failures vs budget.
import type { CampaignStatus, HostRecord } from './campaign-api.js';
import { isFailedHost } from './campaign-api.js';

export function formatCampaignStatus(s: CampaignStatus): string {
  const f = s.failures;
  const lines = [
    `campaign ${s.campaign}: ${s.state}${s.currentWave ? `, wave ${s.currentWave} of ${s.waves.length}` : ''}${s.pauseRequested && s.state === 'running' ? ' (pause requested)' : ''}; ` +
      `failed ${f.count}, budget ${f.budget}${f.hosts.length ? ` (${f.hosts.join(', ')})` : ''}`,
  ];
  if (s.window) lines.push(s.window.open ? `window: open until ${s.window.closesAt}` : `window: opens ${s.window.opensAt}, closes ${s.window.closesAt}`);
  const host = new Map(s.hosts.map((h) => [h.name, h]));
  lines.push('waves:');
  for (const w of s.waves) {
    const hosts = w.hosts.map((n) => (w.state === 'pending' ? n : `${n} ${host.get(n)?.state ?? '?'}`)).join(', ');
    lines.push(`  ${String(w.number).padStart(3)}  ${w.state.padEnd(8)} round ${w.round}${w.approvedBy ? `, approved by ${w.approvedBy}` : ''}: ${hosts}`);
  }
  const skipped = s.hosts.filter((h) => h.state === 'skipped');
  if (skipped.length) lines.push(`skipped (never started): ${skipped.map((h) => h.name).join(', ')}`);
  const attention = s.hosts.filter((h) => isFailedHost(h.state));
  if (attention.length) lines.push('failed hosts (details: ab-upgrade status <host>):', ...attention.map(formatHost));
  if (s.reason) lines.push(`reason: ${s.reason}`);
  if (s.waitingFor) lines.push(`waiting for: ${s.waitingFor}`);
  for (const n of s.notices) lines.push(`notice: ${n}`);
  return lines.join('\n');
}

function formatHost(h: HostRecord): string {
  return `  ${h.name} ${h.state} (attempt ${h.attempts}, wave ${h.wave ?? '-'})${h.reason ? `: ${h.reason}` : ''}`;
}

/** "hosts: 3 committed, 1 running, 2 pending, 1 rolled-back (10 in all)", the states in a fixed order. */
export function formatCampaignCounts(s: Pick<CampaignStatus, 'hosts'>): string {
  const n = new Map<string, number>();
  for (const h of s.hosts) n.set(h.state, (n.get(h.state) ?? 0) + 1);
  const order = ['committed', 'running', 'pending', 'awaiting-operator', ...[...n.keys()].sort()];
  const parts = [...new Set(order)].filter((st) => n.has(st)).map((st) => `${n.get(st)} ${st}`);
  return `hosts: ${parts.join(', ') || 'none'} (${s.hosts.length} in all)`;
}
