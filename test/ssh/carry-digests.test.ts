// Keyed carry digests against a real sshd: the report (kept in the workflow history) must not
// hold the sha256 of a carried file, yet the final sync still sees which files changed.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyPaths } from '../../activities/carry.js';
import { changedFiles } from '../../lib/carry.js';
import { sshdSession } from '../helpers/sshd.js';

const T = 60_000;
const session = sshdSession('ab-upgrade-digests-');

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('carry digests', () => {
  it('are keyed: no carried file is recorded by its sha256, and a changed file is still resynced', { timeout: T }, async () => {
    const root = join(session.tmp, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/sh'), '', { mode: 0o755 });
    const etc = join(session.tmp, 'etc', 'ssh');
    mkdirSync(etc, { recursive: true });
    const hostKey = join(etc, 'ssh_host_ed25519_key');
    const pub = join(etc, 'ssh_host_ed25519_key.pub');
    const keyText = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n';
    writeFileSync(hostKey, keyText, { mode: 0o600 });
    writeFileSync(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG test\n');
    const key = join(session.tmp, 'run', 'carry-digest.key');

    const first = await copyPaths(session.h, root, false, '/srv/data', [etc], key);
    expect(first.carried).toEqual([etc]);
    expect(Object.keys(first.digests).sort()).toEqual([hostKey, pub]);
    expect(first.digests[hostKey]).toMatch(/^[0-9a-f]{64}$/);
    expect(first.digests[hostKey]).not.toBe(sha256(keyText));
    expect(JSON.stringify(first)).not.toContain(sha256(keyText));
    // The key stays on the host, readable by root only, and is made once.
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const keyBefore = readFileSync(key, 'utf8');
    expect(keyBefore).toMatch(/^[0-9a-f]{64}$/);

    writeFileSync(pub, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH changed\n');
    const again = await copyPaths(session.h, root, false, '/srv/data', [etc], key);
    expect(readFileSync(key, 'utf8')).toBe(keyBefore);
    expect(again.digests[hostKey]).toBe(first.digests[hostKey]);
    expect(changedFiles(first.digests, again.digests)).toEqual([pub]);
    expect(readFileSync(join(root, pub), 'utf8')).toContain('changed');
  });
});
