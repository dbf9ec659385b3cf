// The vitest side of the real sshd (test/helpers/sshd-process.ts): everything it exports, and a
// per-file fixture.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { closeAllHosts, SshHost } from '../../activities/ssh.js';
import { startSshd, type Sshd } from './sshd-process.js';

export * from './sshd-process.js';

/**
 * For one test file: a real sshd, a connection to it and a temporary directory, made before
 * the file's tests and removed after them. The fields are set in beforeAll: read them in tests.
 */
export function sshdSession(tmpPrefix: string): { sshd: Sshd; h: SshHost; tmp: string } {
  const s = {} as { sshd: Sshd; h: SshHost; tmp: string };
  beforeAll(async () => {
    s.sshd = await startSshd();
    s.h = await SshHost.connect(s.sshd.target());
    s.tmp = mkdtempSync(join(tmpdir(), tmpPrefix));
  }, 60_000);
  afterAll(async () => {
    closeAllHosts();
    await s.sshd?.stop();
    if (s.tmp) rmSync(s.tmp, { recursive: true, force: true });
  }, 60_000);
  return s;
}
