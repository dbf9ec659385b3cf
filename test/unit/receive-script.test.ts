// The host's receiving script run by a real sh on this machine, with each splitter (perl's, and
// `tee -p` where perl is missing): the bytes unpacked, an unpack failure reported as one (the
// digest still complete), other bytes than the verified ones refused with DIGEST_MISMATCH_EXIT.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DIGEST_MISMATCH_EXIT, receiveScript } from '../../activities/receive-image.js';

const tmp = mkdtempSync(join(tmpdir(), 'ab-receive-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Not a whole number of the splitter's 1 MiB blocks (the tar stream around it is not either).
const payload = randomBytes((3 << 20) + 12345);
const tree = join(tmp, 'tree');
mkdirSync(tree);
writeFileSync(join(tree, 'payload'), payload);
const tarball = spawnSync('tar', ['-cf', '-', '-C', tree, 'payload'], { maxBuffer: 64 << 20 }).stdout;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// Only what the script needs besides perl: the fallback's world.
const noPerl = join(tmp, 'bin-no-perl');
mkdirSync(noPerl);
for (const c of ['sh', 'tee', 'tar', 'sha256sum', 'mktemp', 'rm', 'cat']) symlinkSync(spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim(), join(noPerl, c));

function receive(into: string, expected: string, stdin: Buffer, path: string | undefined) {
  const r = spawnSync('sh', ['-c', `set -eu\n${receiveScript('tar')}`, 'receive', into, expected], { input: stdin, encoding: 'utf8', env: path ? { PATH: path } : process.env });
  return { code: r.status, stderr: r.stderr };
}

describe.each([
  ['perl', undefined],
  ['tee -p (no perl)', noPerl],
])('receiveScript with the %s splitter', (_name, path) => {
  it('unpacks the bytes whose digest is the verified one', () => {
    const into = mkdtempSync(join(tmp, 'into-'));
    expect(receive(into, sha256(tarball), tarball, path)).toEqual({ code: 0, stderr: '' });
    expect(readFileSync(join(into, 'payload')).equals(payload)).toBe(true);
  });

  it('an unpacker that fails early is reported as the failure (the digest still matched)', () => {
    const r = receive(join(tmp, 'missing-dir'), sha256(tarball), tarball, path);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unpacking the release failed \(exit 2\)/);
    expect(r.stderr).not.toMatch(/the host received sha256/);
  });

  it('other bytes than the verified ones: DIGEST_MISMATCH_EXIT with the digest received', () => {
    const altered = Buffer.from(tarball);
    altered[1000]! ^= 0xff;
    const r = receive(mkdtempSync(join(tmp, 'into-')), sha256(tarball), altered, path);
    expect(r.code).toBe(DIGEST_MISMATCH_EXIT);
    expect(r.stderr).toContain(`the host received sha256 ${sha256(altered)}`);
  });
});
