// The operator's status text: the new release's line says when the host pulled the image itself.
import { describe, expect, it } from 'vitest';
import type { InstallResult } from '../../lib/contract.js';
import { formatStatus } from '../../lib/format-status.js';
import type { WorkflowStatus } from '../../lib/workflow-api.js';

const status = (install: InstallResult) => ({ host: 'web-1', workflowType: 'upgradeHost', state: 'running', phase: 'carryConfig', timeline: [], install }) as unknown as WorkflowStatus;
const installLine = (install: InstallResult) => formatStatus(status(install)).split('\n').find((l) => l.includes('new release'));
const base = { prettyName: 'Debian GNU/Linux 13 (trixie)', kernel: '6.12.57+deb13-amd64', bytes: 124_400_000, durationMs: 83_000 };

describe('formatStatus: the new release', () => {
  it('streamed over SSH, pulled by the host, or nothing streamed', () => {
    expect(installLine({ ...base, via: 'ssh' })).toBe('  new release: Debian GNU/Linux 13 (trixie), kernel 6.12.57+deb13-amd64, installed in 1m23s');
    expect(installLine({ ...base, via: 'pull' })).toBe('  new release: Debian GNU/Linux 13 (trixie), kernel 6.12.57+deb13-amd64, installed in 1m23s (pulled by the host)');
    expect(installLine({ ...base, bytes: null })).toBe('  new release: Debian GNU/Linux 13 (trixie), kernel 6.12.57+deb13-amd64, installed in 1m23s');
  });
});
