// The host's receiving script run by a real sh on this machine, with each splitter (perl's, and
// `tee -p` where perl is missing) and each hash (b2sum, and sha256sum where b2sum is missing):
// the bytes unpacked, an unpack failure reported as one (the digest still complete), other bytes
// than the verified ones refused with DIGEST_MISMATCH_EXIT, naming the digest the host took.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DIGEST_MISMATCH_EXIT, receiveArgs, receiveScript } from '../../activities/receive-image.js';

const tmp = mkdtempSync(join(tmpdir(), 'ab-receive-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Not a whole number of the splitter's 1 MiB blocks (the tar stream around it is not either).
const payload = randomBytes((3 << 20) + 12345);
const tree = join(tmp, 'tree');
mkdirSync(tree);
writeFileSync(join(tree, 'payload'), payload);
const tarball = spawnSync('tar', ['-cf', '-', '-C', tree, 'payload'], { maxBuffer: 64 << 20 }).stdout;

const digests = (b: Buffer) => ({
  sha256: createHash('sha256').update(b).digest('hex'),
  blake2b: createHash('blake2b512').update(b).digest('hex'),
});

/** A PATH of only what the script needs, with perl and b2sum or without them. */
function world(name: string, opts: { perl: boolean; b2sum: boolean }): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const tools = ['sh', 'tee', 'tar', 'sha256sum', 'mktemp', 'rm', 'cat', ...(opts.perl ? ['perl'] : []), ...(opts.b2sum ? ['b2sum'] : [])];
  for (const c of tools) symlinkSync(spawnSync('sh', ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim(), join(dir, c));
  return dir;
}

/** The script unpacking `stdin` into `into`, held to the digests of `verified`. */
function receive(into: string, verified: Buffer, stdin: Buffer, path: string) {
  const args = receiveArgs(into, digests(verified));
  const r = spawnSync('sh', ['-c', `set -eu\n${receiveScript('tar')}`, 'receive', ...args], { input: stdin, encoding: 'utf8', env: { PATH: path } });
  return { code: r.status, stderr: r.stderr };
}

describe.each([
  ['perl', 'b2sum', world('perl-b2', { perl: true, b2sum: true }), 'blake2b'],
  ['tee -p (no perl)', 'b2sum', world('tee-b2', { perl: false, b2sum: true }), 'blake2b'],
  ['perl', 'sha256sum (no b2sum)', world('perl-sha', { perl: true, b2sum: false }), 'sha256'],
  ['tee -p (no perl)', 'sha256sum (no b2sum)', world('tee-sha', { perl: false, b2sum: false }), 'sha256'],
] as const)('receiveScript with the %s splitter and %s', (_splitter, _hash, path, digest) => {
  it('unpacks the bytes whose digest is the verified one', () => {
    const into = mkdtempSync(join(tmp, 'into-'));
    expect(receive(into, tarball, tarball, path)).toEqual({ code: 0, stderr: '' });
    expect(readFileSync(join(into, 'payload')).equals(payload)).toBe(true);
  });

  it('an unpacker that fails early is reported as the failure (the digest still matched)', () => {
    const r = receive(join(tmp, 'missing-dir'), tarball, tarball, path);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unpacking the release failed \(exit 2\)/);
    expect(r.stderr).not.toMatch(/the host received/);
  });

  it('other bytes than the verified ones: DIGEST_MISMATCH_EXIT, naming the digest of what arrived', () => {
    const altered = Buffer.from(tarball);
    altered[1000]! ^= 0xff;
    const r = receive(mkdtempSync(join(tmp, 'into-')), tarball, altered, path);
    expect(r.code).toBe(DIGEST_MISMATCH_EXIT);
    expect(r.stderr).toContain(`the host received ${digest} ${digests(altered)[digest]}`);
  });
});
