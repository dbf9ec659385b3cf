// Case results as tables: the plain one printed after a run and the README's markdown table
// (--table). Pure formatting with type-only imports, so tests import it without the harness.
import type { CaseResult } from './case-run.js';
import type { Fault } from './cases.js';

export function formatTable(cases: CaseResult[]): string {
  const rows = [['case', 'fault', 'injected in', 'workflow', 'host end state', 'verified', 'seconds']];
  for (const c of cases) {
    rows.push([c.name, c.fault, c.injected ? (c.faultPhase ?? '?') : 'not injected', c.workflowState, c.endState, c.verified ? 'yes' : 'NO', String(c.seconds)]);
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd()).join('\n');
}

const FAULT_WORDS: Record<Fault, string> = {
  none: 'none',
  'worker-kill': 'worker SIGKILL',
  'server-restart': 'server SIGKILL + restart',
  'ssh-cut': "the worker's SSH sessions cut",
  'host-key': 'new SSH host keys',
};

/** The README's table (`--table`): one row per recorded case, in the matrix's order. */
export function formatMarkdown(cases: CaseResult[]): string {
  const end = (c: CaseResult) => (c.endState === 'new-slot' || c.endState === 'old-slot' ? c.endState.replace('-', ' ') : c.endState) + (c.verified ? ' ✔' : ' ✘');
  const rows = [
    '| case | fault, where | workflow | host end state | retried | case s | workflow s | after the fault s |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...cases.map((c) =>
      `| ${c.name} | ${FAULT_WORDS[c.fault]}${c.fault === 'none' ? '' : `, ${c.injected ? c.point : `${c.point} (not injected)`}`} | ${c.workflowState} | ${end(c)} | ${c.retried === undefined ? 'not recorded' : c.retried.join(', ') || '–'} | ${c.seconds} | ${c.workflowSeconds} | ${c.afterFaultSeconds ?? '–'} |`,
    ),
  ];
  return rows.join('\n');
}
