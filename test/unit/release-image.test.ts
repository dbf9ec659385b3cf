// The controller's side of a release image, with the real minisign binary: the signature (or an
// unsigned image's sha256) is checked before anything is sent, the digest comes from the bytes
// minisign read, and the stream for the host fails when the file changed after verification.
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRelease, ImageDigestError, ReleaseChangedError, verifiedStream, verifyImage } from '../../activities/release-image.js';
import { ReleaseSignatureError } from '../../activities/signature.js';
import { parseProfile, type ImageRelease } from '../../lib/profile.js';
import { buildRelease, makeKey, sha256Of, sign, type TestKey } from '../helpers/release-fixture.js';

let dir: string;
let image: string;
let key: TestKey;
let other: TestKey;
let sha: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ab-release-image-'));
  key = makeKey(dir, 'release');
  other = makeKey(dir, 'other');
  image = buildRelease(dir, 'trixie', 'tar.zst');
  sign(key, image);
  sha = sha256Of(image);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An image release as the profile schema makes it. */
function release(fields: Record<string, unknown>): ImageRelease {
  const p = parseProfile({
    host: 'h', auth: { agent: true }, hostKey: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', slots: 'auto',
    data: { device: 'LABEL=data', mountPoint: '/srv' },
    release: { source: 'image', url: image, ...fields },
  });
  return p.release as ImageRelease;
}
const signed = (over: Record<string, unknown> = {}) => release({ signature: `${image}.minisig`, publicKey: key.pub, ...over });

/** A copy of the image (and of its signature) that a test may change. */
function copy(name: string): string {
  const f = join(dir, name);
  copyFileSync(image, f);
  copyFileSync(`${image}.minisig`, `${f}.minisig`);
  return f;
}

describe('verifyImage', () => {
  it('a good signature: the digest and size of the bytes minisign verified, the key id and trusted comment', async () => {
    let read = 0;
    const v = await verifyImage(signed(), { onBytes: (n) => (read += n) });
    expect(v).toMatchObject({ file: image, sha256: sha, bytes: readFileSync(image).length, keyId: key.keyId, trustedComment: 'ab-upgrade test release' });
    expect(read).toBe(v.bytes);
    // the key given inline, and a pinned sha256 that agrees
    await expect(verifyImage(signed({ publicKey: key.key, sha256: sha }))).resolves.toMatchObject({ sha256: sha, keyId: key.keyId });
  });

  it('a pinned sha256 that disagrees with a good signature names release.sha256', async () => {
    await expect(verifyImage(signed({ sha256: 'ab'.repeat(32) }))).rejects.toThrow(ImageDigestError);
    await expect(verifyImage(signed({ sha256: 'ab'.repeat(32) }))).rejects.toThrow(new RegExp(`^release\\.sha256: release image .* has sha256 ${sha}, the profile expects abab`));
  });

  it('wrong key: names both key ids, before the image is read', async () => {
    const p = signed({ publicKey: other.pub });
    await expect(verifyImage(p)).rejects.toThrow(ReleaseSignatureError);
    await expect(verifyImage(p)).rejects.toThrow(`release.signature: ${image}.minisig was made with key ${key.keyId}, but release.publicKey is key ${other.keyId} (wrong key, or the image was signed by someone else)`);
    // the image is not even looked at: one that does not exist fails the same way
    await expect(verifyImage({ ...p, url: join(dir, 'absent.tar.zst') })).rejects.toThrow(/was made with key .* but release\.publicKey is key /);
  });

  it('bad signature (its signature line altered): does not match, minisign says why', async () => {
    const f = copy('badsig.tar.zst');
    const lines = readFileSync(`${f}.minisig`, 'utf8').split('\n');
    const s = lines[1]!;
    // a character inside the Ed25519 signature, past the algorithm and key id
    lines[1] = s.slice(0, 30) + (s[30] === 'A' ? 'B' : 'A') + s.slice(31);
    writeFileSync(`${f}.minisig`, lines.join('\n'));
    await expect(verifyImage(release({ url: f, signature: `${f}.minisig`, publicKey: key.pub }))).rejects.toThrow(
      `release image ${f} does not match its signature ${f}.minisig by key ${key.keyId}: minisign: Signature verification failed`,
    );
  });

  it('truncated artifact: does not match its signature', async () => {
    const f = copy('truncated.tar.zst');
    truncateSync(f, readFileSync(f).length - 100);
    await expect(verifyImage(release({ url: f, signature: `${f}.minisig`, publicKey: key.pub }))).rejects.toThrow(/does not match its signature .*: minisign: Signature verification failed$/);
  });

  it('artifact tampered after signing: does not match its signature', async () => {
    const f = copy('tampered.tar.zst');
    const bytes = readFileSync(f);
    bytes[bytes.length >> 1]! ^= 0x01;
    writeFileSync(f, bytes);
    await expect(verifyImage(release({ url: f, signature: `${f}.minisig`, publicKey: key.pub }))).rejects.toThrow(/does not match its signature .*: minisign: Signature verification failed$/);
  });

  it('a legacy signature (minisign -l) is refused by name', async () => {
    const legacy = sign(key, image, join(dir, 'legacy.minisig'), true);
    await expect(verifyImage(signed({ signature: legacy }))).rejects.toThrow(`release.signature: ${legacy} is a legacy signature over the whole file (minisign -l)`);
  });

  it('signature file missing, public key file missing, a signature that is no signature: each names its field', async () => {
    await expect(verifyImage(signed({ signature: join(dir, 'nope.minisig') }))).rejects.toThrow(`release.signature: ${join(dir, 'nope.minisig')} cannot be read (no such file)`);
    await expect(verifyImage(signed({ publicKey: join(dir, 'nope.pub') }))).rejects.toThrow(`release.publicKey: ${join(dir, 'nope.pub')} cannot be read (no such file)`);
    await expect(verifyImage(signed({ signature: key.pub }))).rejects.toThrow(`release.signature: ${key.pub} is not a minisign signature`);
  });

  it('allowUnsigned: the pinned sha256 is the check', async () => {
    await expect(verifyImage(release({ sha256: sha, allowUnsigned: true }))).resolves.toMatchObject({ sha256: sha, keyId: null, trustedComment: null });
    await expect(verifyImage(release({ sha256: 'cd'.repeat(32), allowUnsigned: true }))).rejects.toThrow(/^release\.sha256: release image .* has sha256 /);
  });

  it('an unsigned image without allowUnsigned is refused even when the schema was bypassed', async () => {
    const p = { ...release({ sha256: sha, allowUnsigned: true }), allowUnsigned: false };
    await expect(verifyImage(p)).rejects.toThrow(/^release\.signature: the image is not signed and allowUnsigned is not set/);
  });
});

describe('images and signatures from http(s)', () => {
  let server: Server;
  let base: string;
  let cache: string;
  const oldCache = process.env.XDG_CACHE_HOME;
  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'ab-release-cache-'));
    process.env.XDG_CACHE_HOME = cache;
    server = createServer((req, res) => {
      const f = join(dir, req.url!.slice(1));
      if (!req.url!.includes('..') && existsSync(f)) res.end(readFileSync(f));
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    if (oldCache === undefined) delete process.env.XDG_CACHE_HOME;
    else process.env.XDG_CACHE_HOME = oldCache;
    await new Promise((r) => server.close(r));
    rmSync(cache, { recursive: true, force: true });
  });
  const releases = () => join(cache, 'ab-upgrade', 'releases');

  it('an unpinned image is downloaded for this use only; a pinned one is cached under its sha256', async () => {
    const v = await verifyImage(release({ url: `${base}/trixie.tar.zst`, signature: `${base}/trixie.tar.zst.minisig`, publicKey: key.key }));
    expect(v).toMatchObject({ sha256: sha, keyId: key.keyId });
    expect(readdirSync(releases())).toHaveLength(1);
    await v.dispose();
    expect(readdirSync(releases())).toEqual([]);
    const pinned = await verifyImage(release({ url: `${base}/trixie.tar.zst`, sha256: sha, signature: `${base}/trixie.tar.zst.minisig`, publicKey: key.key }));
    expect(pinned.file).toBe(join(releases(), sha));
    await pinned.dispose();
    expect(readdirSync(releases())).toEqual([sha]);
  });

  it('a signature URL that does not answer names release.signature (and is retryable: not a ReleaseSignatureError)', async () => {
    const p = release({ url: `${base}/trixie.tar.zst`, signature: `${base}/missing.minisig`, publicKey: key.key });
    const e = await verifyImage(p).catch((x: Error) => x);
    expect(e).not.toBeInstanceOf(ReleaseSignatureError);
    expect((e as Error).message).toBe(`release.signature: downloading ${base}/missing.minisig: HTTP 404`);
  });
});

describe('verifiedStream', () => {
  const drain = async (s: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  it('gives the verified bytes', async () => {
    const v = await verifyImage(signed());
    expect((await drain(verifiedStream(v))).equals(readFileSync(image))).toBe(true);
  });

  it('fails instead of ending when the file changed after it was verified', async () => {
    const f = copy('swapped.tar.zst');
    const v = await verifyImage(release({ url: f, signature: `${f}.minisig`, publicKey: key.pub }));
    const bytes = readFileSync(f);
    bytes[100]! ^= 0xff;
    writeFileSync(f, bytes);
    await expect(drain(verifiedStream(v))).rejects.toThrow(ReleaseChangedError);
    await expect(drain(verifiedStream(v))).rejects.toThrow(new RegExp(`^release image ${f} changed after it was verified: .* the verified ones ${v.sha256}; nothing was marked installed$`));
  });
});

describe('checkRelease (what plan shows)', () => {
  it('verified: key id, digest, trusted comment', async () => {
    expect(await checkRelease(signed())).toEqual({ source: 'image', signed: true, keyId: key.keyId, verified: true, sha256: sha, bytes: readFileSync(image).length, trustedComment: 'ab-upgrade test release' });
  });

  it('not verified: the key id and why', async () => {
    expect(await checkRelease(signed({ publicKey: other.pub }))).toEqual({
      source: 'image', signed: true, keyId: other.keyId, verified: false,
      problem: `release.signature: ${image}.minisig was made with key ${key.keyId}, but release.publicKey is key ${other.keyId} (wrong key, or the image was signed by someone else)`,
    });
  });

  it('debootstrap: left to debootstrap', async () => {
    expect(await checkRelease({ source: 'debootstrap', suite: 'trixie', mirror: 'http://deb.debian.org/debian', components: ['main'], packages: [] })).toEqual({ source: 'debootstrap' });
  });
});
