// Checks a release's minisign signature on the controller with the `minisign -V` binary (argv,
// no shell), and returns the digests of exactly the bytes minisign accepted: they are what the
// stream to the host and the host's own hash are then held to.
import { execFile, spawn } from 'node:child_process';
import { constants, createReadStream } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { imageDigester, type ImageDigests } from './image-digests.js';

/** The verifier: Debian's `minisign` package on the controller (found on PATH). */
const MINISIGN = 'minisign';

/** The artifact does not carry a valid signature by the expected key, or cannot be checked. */
export class ReleaseSignatureError extends Error {
  override name = 'ReleaseSignatureError';
}

/** The digests of the bytes minisign verified, and their count. */
export interface SignedBytes extends ImageDigests {
  bytes: number;
}

/**
 * Verifies `file` against `signature` (a .minisig's content) and `publicKey` (a key line, "RW…")
 * and hashes the same bytes on the way.
 *
 * minisign reads its input by name, so handing it the file's path would let the file change
 * between minisign's read and ours. Instead this process reads the file once and writes every
 * chunk, after hashing it, into a FIFO in a private directory that minisign reads as its input:
 * the digest returned is that of the very bytes minisign checked. (Node's child stdio pipes are
 * sockets, which minisign cannot open as a file, hence the FIFO.) `-H` refuses legacy signatures,
 * which are made over the whole file held in memory rather than over its hash.
 */
export async function minisignVerify(
  file: string,
  signature: string,
  publicKey: string,
  opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<SignedBytes> {
  const dir = await mkdtemp(join(tmpdir(), 'ab-upgrade-verify-'));
  try {
    const sigFile = join(dir, 'release.minisig');
    const fifo = join(dir, 'release');
    await writeFile(sigFile, signature, { mode: 0o600 });
    await promisify(execFile)('mkfifo', ['-m', '600', '--', fifo]);

    const child = spawn(MINISIGN, ['-V', '-H', '-P', publicKey, '-x', sigFile, '-m', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve, reject) => {
      // Not a ReleaseSignatureError: the release is not at fault, and a retry may find minisign installed.
      child.once('error', (e: NodeJS.ErrnoException) =>
        reject(e.code === 'ENOENT' ? new Error(`${MINISIGN} is not installed on the controller (apt-get install minisign): release signatures cannot be checked`) : e),
      );
      child.once('close', (code) => resolve(code));
    });
    const kill = () => child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', kill, { once: true });
    // Opening a FIFO for writing waits for its reader; if minisign ends without opening it (a
    // bad signature file), our own non-blocking reader releases that wait.
    void exited
      .catch(() => undefined)
      .then(() => open(fifo, constants.O_RDONLY | constants.O_NONBLOCK))
      .then((fh) => fh.close(), () => undefined);

    const hash = imageDigester();
    let bytes = 0;
    const feed = (async () => {
      const out = await open(fifo, constants.O_WRONLY);
      await pipeline(
        createReadStream(file, { highWaterMark: 1 << 20 }),
        new Transform({
          transform(c: Buffer, _e, done) {
            hash.update(c);
            bytes += c.length;
            opts.onBytes?.(c.length);
            done(null, c);
          },
        }),
        out.createWriteStream(),
      );
    })();
    // The file cannot be read: that is the error. Else minisign's verdict decides; a write that
    // failed because minisign stopped reading (EPIPE) is explained by minisign's own message.
    const fed = await feed.then(() => null, (e: NodeJS.ErrnoException) => e);
    if (fed && fed.code !== 'EPIPE') {
      kill();
      await exited.catch(() => undefined);
      throw fed;
    }
    const code = await exited.finally(() => opts.signal?.removeEventListener('abort', kill));
    opts.signal?.throwIfAborted();
    if (code !== 0 || fed) {
      const why = stderr.trim().split('\n').filter(Boolean).join('; ') || `minisign exited with ${code}`;
      throw new ReleaseSignatureError(why);
    }
    return { ...hash.digests(), bytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
