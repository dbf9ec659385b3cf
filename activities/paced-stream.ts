// install.maxRate: the image leaves the controller no faster than the profile allows, so an
// upgrade (or a campaign's wave of them) leaves room on the links the hosts serve over.
import { Transform, type Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * `src` at no more than `bytesPerSecond` on average from its first byte: it passes in pieces
 * of about 50 ms' worth, each once the bytes before it have had their time, so it never runs
 * ahead by more than one piece. Errors of `src` end the paced stream with the same error, and
 * a paced stream ended early stops `src`.
 */
export function paced(src: Readable, bytesPerSecond: number): Readable {
  const piece = Math.max(1024, Math.floor(bytesPerSecond / 20));
  let started = 0;
  let passed = 0;
  const out = new Transform({
    async transform(chunk: Buffer, _encoding, done) {
      try {
        started ||= Date.now();
        for (let off = 0; off < chunk.length; off += piece) {
          const wait = started + (passed / bytesPerSecond) * 1000 - Date.now();
          if (wait > 0) await sleep(wait);
          if (out.destroyed) return done();
          const part = chunk.subarray(off, off + piece);
          passed += part.length;
          out.push(part);
        }
        done();
      } catch (e) {
        done(e as Error);
      }
    },
  });
  src.on('error', (e) => out.destroy(e));
  out.on('close', () => src.destroy());
  return src.pipe(out);
}
