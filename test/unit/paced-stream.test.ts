// install.maxRate's pacing of the image stream on the controller: every byte, in order, no
// sooner than the cap allows; the source's errors reach the reader; an early end stops the source.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { paced } from '../../activities/paced-stream.js';

async function drain(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('paced', () => {
  it('passes every byte in order, and 400 kB at 1 MB/s take at least 350 ms (the last 50 ms piece goes at once)', async () => {
    const data = randomBytes(400_000);
    const t = Date.now();
    const out = await drain(paced(Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), 1_000_000));
    expect(Date.now() - t).toBeGreaterThanOrEqual(349);
    expect(out.equals(data)).toBe(true);
  });

  it('an error of the source ends the paced stream with that error', async () => {
    const src = new Readable({ read() {} });
    const out = paced(src, 1_000_000);
    src.push(Buffer.alloc(1000));
    setTimeout(() => src.destroy(new Error('the image changed')), 20);
    await expect(drain(out)).rejects.toThrow('the image changed');
  });

  it('a paced stream ended by its reader stops the source', async () => {
    let reads = 0;
    const src = new Readable({
      read() {
        reads++;
        this.push(Buffer.alloc(16_384));
      },
    });
    const out = paced(src, 100_000);
    out.resume();
    await new Promise((r) => setTimeout(r, 100));
    out.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(src.destroyed).toBe(true);
    const after = reads;
    await new Promise((r) => setTimeout(r, 100));
    expect(reads).toBe(after);
  });
});
