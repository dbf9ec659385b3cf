// The carry's COPY script against a real sshd (test/helpers/sshd.ts), with temporary directories
// standing in for the new slot's root and for the running root's /run.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, existsSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyPaths } from '../../activities/carry.js';
import { sshdSession } from '../helpers/sshd.js';

const T = 60_000;
const session = sshdSession('ab-upgrade-carry-');

/** An empty "new slot": just a /bin/sh, which COPY requires. */
function newRoot(name: string): string {
  const root = join(session.tmp, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin/sh'), '#!/bin/true\n', { mode: 0o755 });
  return root;
}

describe('COPY confines every carried path to the new root', () => {
  it('skips a path whose parent is an absolute symlink out of the new root, leaving the target alone', { timeout: T }, async () => {
    // On the running slot: a carried file <src>/run/app.pid, as /var/run/app.pid would be.
    const src = join(session.tmp, 'running', 'var');
    mkdirSync(join(src, 'run'), { recursive: true });
    writeFileSync(join(src, 'run', 'app.pid'), 'from the old slot\n');
    // The running root's /run, holding a file of the same name that must survive.
    const runningRun = join(session.tmp, 'running-run');
    mkdirSync(runningRun);
    writeFileSync(join(runningRun, 'app.pid'), 'sentinel\n');
    // On the new slot, <src>/run is an absolute symlink to it (as /var/run -> /run is).
    const root = newRoot('root-symlink');
    mkdirSync(join(root, src), { recursive: true });
    symlinkSync(runningRun, join(root, src, 'run'));
    const carried = join(src, 'run', 'app.pid');
    const plain = join(session.tmp, 'running', 'plain.conf');
    writeFileSync(plain, 'plain\n');

    const r = await copyPaths(session.h, root, false, '/srv/data', [carried, plain], join(session.tmp, 'key'));

    expect(readFileSync(join(runningRun, 'app.pid'), 'utf8')).toBe('sentinel\n');
    expect(r.carried).toEqual([plain]);
    expect(r.skipped).toEqual([{ path: carried, reason: `resolves outside the new slot: ${join(src, 'run')} is ${runningRun} there` }]);
    expect(readFileSync(join(root, plain), 'utf8')).toBe('plain\n');
    expect(Object.keys(r.digests)).toEqual([plain]);
  });

  it('skips /, pseudo filesystems, /boot and the data mount, touching nothing', { timeout: T }, async () => {
    const root = newRoot('root-refused');
    const data = join(session.tmp, 'data');
    mkdirSync(data);
    writeFileSync(join(data, 'big'), 'x');
    const r = await copyPaths(session.h, root, false, data, ['/', '/proc', '/proc/self', '/boot', '/run/ab-upgrade', data, join(data, 'big'), `${data}/./big`], join(session.tmp, 'key'));
    expect(r.carried).toEqual([]);
    expect(r.skipped.map((s) => s.path)).toEqual(['/', '/proc', '/proc/self', '/boot', '/run/ab-upgrade', data, join(data, 'big'), `${data}/./big`]);
    expect(existsSync(join(root, 'proc'))).toBe(false);
    expect(existsSync(join(root, data))).toBe(false);
    expect(lstatSync(join(root, 'bin/sh')).isFile()).toBe(true);
  });

  it('still replaces a symlink at the carried path itself, without following it', { timeout: T }, async () => {
    const root = newRoot('root-link-leaf');
    const outside = join(session.tmp, 'outside-resolv');
    writeFileSync(outside, 'sentinel\n');
    const src = join(session.tmp, 'running', 'resolv.conf');
    writeFileSync(src, 'nameserver 192.0.2.53\n');
    mkdirSync(join(root, join(session.tmp, 'running')), { recursive: true });
    symlinkSync(outside, join(root, src));
    const r = await copyPaths(session.h, root, false, '/srv/data', [src], join(session.tmp, 'key'));
    expect(r.carried).toEqual([src]);
    expect(readFileSync(outside, 'utf8')).toBe('sentinel\n');
    expect(readFileSync(join(root, src), 'utf8')).toBe('nameserver 192.0.2.53\n');
  });
});
