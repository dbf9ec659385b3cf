// The digests a release image is held to. sha256 is what signatures, manifests and profiles
// name; BLAKE2b-512, taken from the same read, is what the host checks when it has b2sum
// (coreutils since 8.26): as strong, for about a third of sha256sum's CPU (coreutils hashes in
// plain C, without the CPU's SHA instructions), which the host is also serving with.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface ImageDigests {
  sha256: string;
  /** BLAKE2b-512, as `b2sum` prints it. */
  blake2b: string;
}

/** Both digests of the chunks fed to `update`. */
export function imageDigester(): { update(chunk: Buffer): void; digests(): ImageDigests } {
  const sha256 = createHash('sha256');
  const blake2b = createHash('blake2b512');
  return {
    update: (c) => (sha256.update(c), blake2b.update(c)),
    digests: () => ({ sha256: sha256.digest('hex'), blake2b: blake2b.digest('hex') }),
  };
}

type ReadOptions = { signal?: AbortSignal; onBytes?: (n: number) => void };

/** Feeds a file's chunks to `update`; returns its size. */
async function readInto(file: string, update: (chunk: Buffer) => void, opts: ReadOptions): Promise<number> {
  let bytes = 0;
  const input = createReadStream(file, { highWaterMark: 1 << 20, ...(opts.signal ? { signal: opts.signal } : {}) });
  for await (const c of input as AsyncIterable<Buffer>) {
    update(c);
    bytes += c.length;
    opts.onBytes?.(c.length);
  }
  return bytes;
}

/** Both digests of a file, and its size, in one read. */
export async function hashFile(file: string, opts: ReadOptions = {}): Promise<ImageDigests & { bytes: number }> {
  const d = imageDigester();
  const bytes = await readInto(file, d.update, opts);
  return { ...d.digests(), bytes };
}

/** A file's sha256 and size alone, as a release manifest records them. */
export async function sha256File(file: string, opts: ReadOptions = {}): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  const bytes = await readInto(file, (c) => h.update(c), opts);
  return { sha256: h.digest('hex'), bytes };
}
