// The README's chaos table (bench/chaos/table.ts formatMarkdown): one row per recorded case,
// with the fault's point, the two end states and their verification, and what was retried.
import { describe, expect, it } from 'vitest';
import { formatMarkdown } from '../../bench/chaos/table.js';

type Case = Parameters<typeof formatMarkdown>[0][number];

const base: Case = {
  name: 'kill-commit',
  point: 'checkHealth → commitSlot',
  fault: 'worker-kill',
  workflow: 'upgradeHost',
  scenario: 'good',
  injected: true,
  faultPhase: 'commitSlot',
  workflowState: 'committed',
  reason: null,
  endState: 'new-slot',
  verified: true,
  problems: [],
  notes: [],
  path: [],
  timings: null,
  retried: ['commitSlot#2'],
  seconds: 400.1,
  bootSeconds: 40,
  workflowSeconds: 200.2,
  afterFaultSeconds: 20.3,
  verifySeconds: 70,
  date: '2026-12-03T00:00:00.000Z',
};

const rowsOf = (cases: Case[]) => formatMarkdown(cases).split('\n').slice(2);

describe('formatMarkdown', () => {
  it('names the fault and its point, the end state verified and the figures', () => {
    expect(rowsOf([base])).toEqual(['| kill-commit | worker SIGKILL, checkHealth → commitSlot | committed | new slot ✔ | commitSlot#2 | 400.1 | 200.2 | 20.3 |']);
  });

  it('marks a third state, a fault that never went in and a record without retries', () => {
    const [row] = rowsOf([{ ...base, injected: false, endState: 'third', verified: false, retried: undefined, afterFaultSeconds: null }]);
    expect(row).toBe('| kill-commit | worker SIGKILL, checkHealth → commitSlot (not injected) | committed | third ✘ | not recorded | 400.1 | 200.2 | – |');
  });

  it('the baseline has no point and an empty retry list shows a dash', () => {
    const [row] = rowsOf([{ ...base, name: 'baseline-upgrade', fault: 'none', retried: [] }]);
    expect(row).toMatch(/^\| baseline-upgrade \| none \| committed \| new slot ✔ \| – \|/);
  });
});
