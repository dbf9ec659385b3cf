// A release image on the controller: found or downloaded, verified before anything is sent to
// the host (its minisign signature, or for an image explicitly allowed unsigned its pinned
// sha256), then read again for the host with the verified digest enforced.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ImageRelease, ReleaseConfig } from '../lib/profile.js';
import { parsePublicKey, parseSignature, type MinisignPublicKey, type MinisignSignature, type ReleaseCheck } from '../lib/signature.js';
import { minisignVerify, ReleaseSignatureError } from './signature.js';
import { verifyManifest } from './image-manifest.js';
import { hashFile, type ImageDigests } from './image-digests.js';

/** The image's content is not what the profile pins (release.sha256). */
export class ImageDigestError extends Error {
  override name = 'ImageDigestError';
}

/** The image file changed on the controller after it was verified. */
export class ReleaseChangedError extends Error {
  override name = 'ReleaseChangedError';
}

export interface VerifiedImage {
  /** The image on the controller. */
  file: string;
  /** sha256 of the bytes verified: everything later is held to it. */
  sha256: string;
  /** BLAKE2b-512 of the same bytes, from the same read: the host checks this one where it can. */
  blake2b: string;
  bytes: number;
  /** The signing key's id; null for an image allowed unsigned. */
  keyId: string | null;
  trustedComment: string | null;
  /** Removes a download made for this use only (a no-op for a path or a cached download). */
  dispose(): Promise<void>;
}

export interface VerifyOptions {
  signal?: AbortSignal;
  /** Called with the size of each chunk read while verifying. */
  onBytes?: (n: number) => void;
}

const isUrl = (s: string) => /^https?:\/\//.test(s);
const cacheDir = () => join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ab-upgrade', 'releases');
/** Far larger than any .minisig or .pub file: a bigger answer is not one. */
const SMALL_FILE_LIMIT = 64 * 1024;

/**
 * Verifies the image a profile names. A signed image: the signature and the key are read
 * first (a wrong key, a legacy signature or a missing file fails before the image is touched),
 * then `minisign -V` checks the image and its digest comes from the same read. An unsigned one
 * (allowUnsigned): its sha256 must be the profile's. A pinned sha256 is checked either way.
 */
export async function verifyImage(r: ImageRelease, opts: VerifyOptions = {}): Promise<VerifiedImage> {
  const signed = r.signature !== undefined && r.publicKey !== undefined ? await loadSignedBy(r.signature, r.publicKey) : null;
  if (!signed && !r.allowUnsigned) {
    // The schema refuses such a profile; this guards callers that bypass it.
    throw new ReleaseSignatureError('release.signature: the image is not signed and allowUnsigned is not set: refusing to install it');
  }
  const { file, dispose } = await obtainImage(r.url, r.sha256, opts.signal);
  try {
    let got: ImageDigests & { bytes: number };
    if (signed) {
      try {
        got = await minisignVerify(file, signed.text, signed.key.key, opts);
      } catch (e) {
        if (!(e instanceof ReleaseSignatureError)) throw e;
        throw new ReleaseSignatureError(`release image ${r.url} does not match its signature ${r.signature} by key ${signed.key.keyId}: minisign: ${e.message}`);
      }
    } else {
      got = await hashFile(file, opts);
    }
    if (r.sha256 !== undefined && got.sha256 !== r.sha256) {
      throw new ImageDigestError(`release.sha256: release image ${r.url} has sha256 ${got.sha256}, the profile expects ${r.sha256}`);
    }
    return { file, ...got, keyId: signed?.key.keyId ?? null, trustedComment: signed?.signature.trustedComment ?? null, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** The signature and the key, read and matched: the key ids must agree and the signature be prehashed. */
export async function loadSignedBy(signatureRef: string, publicKeyRef: string, field = 'release.signature'): Promise<{ text: string; signature: MinisignSignature; key: MinisignPublicKey }> {
  const key = await loadPublicKey(publicKeyRef);
  const text = await readSmall(signatureRef, field);
  const signature = parseAs(() => parseSignature(text), `${field}: ${signatureRef}`);
  if (signature.keyId !== key.keyId) {
    throw new ReleaseSignatureError(`${field}: ${signatureRef} was made with key ${signature.keyId}, but release.publicKey is key ${key.keyId} (wrong key, or the image was signed by someone else)`);
  }
  if (!signature.prehashed) {
    throw new ReleaseSignatureError(`${field}: ${signatureRef} is a legacy signature over the whole file (minisign -l): sign the image again without -l`);
  }
  return { text, signature, key };
}

async function loadPublicKey(ref: string): Promise<MinisignPublicKey> {
  const text = ref.startsWith('/') ? await readSmall(ref, 'release.publicKey') : ref;
  return parseAs(() => parsePublicKey(text), `release.publicKey: ${ref.startsWith('/') ? ref : 'the key'}`);
}

function parseAs<T>(parse: () => T, what: string): T {
  try {
    return parse();
  } catch (e) {
    throw new ReleaseSignatureError(`${what} ${(e as Error).message}`);
  }
}

/** A signature, key or manifest file's text, from a path or (not a key) an http(s) URL. */
export async function readSmall(ref: string, field: string, kind = 'a minisign file'): Promise<string> {
  if (isUrl(ref)) {
    // Not a ReleaseSignatureError: a server that does not answer now may answer on a retry.
    const res = await fetch(ref).catch((e: Error) => {
      throw new Error(`${field}: downloading ${ref}: ${e.message}`);
    });
    if (!res.ok) throw new Error(`${field}: downloading ${ref}: HTTP ${res.status}`);
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > SMALL_FILE_LIMIT) throw new ReleaseSignatureError(`${field}: ${ref} is ${body.length} bytes, not ${kind}`);
    return body.toString('utf8');
  }
  const size = await stat(ref).then(
    (s) => s.size,
    (e: NodeJS.ErrnoException) => {
      throw new ReleaseSignatureError(`${field}: ${ref} cannot be read (${e.code === 'ENOENT' ? 'no such file' : e.message})`);
    },
  );
  if (size > SMALL_FILE_LIMIT) throw new ReleaseSignatureError(`${field}: ${ref} is ${size} bytes, not ${kind}`);
  return readFile(ref, 'utf8');
}

/**
 * The image as a local file. A path is used in place. A URL is downloaded: into the cache under
 * its pinned sha256 (reused later), else to a file of its own that dispose() removes.
 */
async function obtainImage(url: string, sha256: string | undefined, signal?: AbortSignal): Promise<{ file: string; dispose: () => Promise<void> }> {
  if (!isUrl(url)) return { file: url, dispose: async () => undefined };
  const dir = cacheDir();
  await mkdir(dir, { recursive: true });
  const file = join(dir, sha256 ?? `download-${randomUUID()}`);
  const dispose = sha256 ? async () => undefined : () => rm(file, { force: true });
  if (sha256 && (await stat(file).catch(() => null))) return { file, dispose };
  const part = `${file}.${randomUUID()}.part`;
  try {
    const res = await fetch(url, signal ? { signal } : {});
    if (!res.ok || !res.body) throw new Error(`downloading ${url}: HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body as never), createWriteStream(part));
    await rename(part, file);
  } finally {
    await rm(part, { force: true });
  }
  return { file, dispose };
}

/**
 * The verified image's bytes for the host. Verification and this stream are two reads of the
 * file, so the file could change in between: the bytes are hashed on the way, and when they
 * are not the bytes verified the stream fails instead of ending, so the command receiving them
 * is killed and never sees a complete stream. Whatever reached the host by then lies on the
 * spare, which is neither marked installed nor booted, and which a retry empties; the host also
 * hashes what it received and compares it with a digest of the verified bytes
 * (activities/receive-image.ts).
 */
export function verifiedStream(image: Pick<VerifiedImage, 'file' | 'sha256'>, onBytes?: (n: number) => void): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    const hash = createHash('sha256');
    for await (const c of createReadStream(image.file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      hash.update(c);
      onBytes?.(c.length);
      yield c;
    }
    const got = hash.digest('hex');
    if (got !== image.sha256) {
      throw new ReleaseChangedError(`release image ${image.file} changed after it was verified: the bytes read for the host have sha256 ${got}, the verified ones ${image.sha256}; nothing was marked installed`);
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}

/** What `plan` reports about the release: verified (key id, digest) or why not. */
export async function checkRelease(release: ReleaseConfig, opts: VerifyOptions = {}): Promise<ReleaseCheck> {
  if (release.source === 'debootstrap') return { source: 'debootstrap' };
  const signed = release.signature !== undefined;
  try {
    const v = await verifyImage(release, opts);
    await v.dispose();
    // An image's manifest is checked as the install checks it (the slot's size is the install's to check).
    if (release.format === 'ext4-image') await verifyManifest(release, v);
    return { source: 'image', signed, keyId: v.keyId, verified: true, sha256: v.sha256, bytes: v.bytes, trustedComment: v.trustedComment };
  } catch (e) {
    const keyId = release.publicKey ? await loadPublicKey(release.publicKey).then((k) => k.keyId, () => null) : null;
    return { source: 'image', signed, keyId, verified: false, problem: (e as Error).message };
  }
}
