// The screenshot reader of the report's browser test (test/helpers/png.ts): PNGs written here
// with every row filter, in RGB, RGBA, greyscale and palette, decode to the pixels they hold;
// a blank image counts as blank.
import { deflateSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { pixelStats, readPng } from '../helpers/png.js';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, Buffer.from(type, 'latin1'), data, Buffer.alloc(4)]); // the reader does not check CRCs
}

const paeth = (a: number, b: number, c: number) => {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
};

/** A PNG of `px` (bpp bytes a pixel), row y filtered with filter y % 5. */
function writePng(width: number, height: number, colorType: number, bpp: number, px: Uint8Array, plte?: Buffer): Buffer {
  const stride = width * bpp;
  const rows: Buffer[] = [];
  for (let y = 0; y < height; y++) {
    const f = y % 5;
    const row = Buffer.alloc(stride + 1);
    row[0] = f;
    for (let i = 0; i < stride; i++) {
      const x = px[y * stride + i]!;
      const a = i >= bpp ? px[y * stride + i - bpp]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? px[(y - 1) * stride + i - bpp]! : 0;
      const pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f]!;
      row[i + 1] = (x - pred) & 0xff;
    }
    rows.push(row);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, colorType, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(plte ? [chunk('PLTE', plte)] : []),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Deterministic noise, so every filter sees varied neighbours. */
function noise(n: number, seed = 7): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) out[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return out;
}

describe('readPng', () => {
  test.each([
    ['RGB', 2, 3],
    ['RGBA', 6, 4],
    ['grey', 0, 1],
    ['grey+alpha', 4, 2],
  ])('%s, every row filter: the pixels come back exactly', (_name, colorType, bpp) => {
    const [w, h] = [13, 11];
    const px = noise(w * h * bpp);
    const png = readPng(writePng(w, h, colorType, bpp, px));
    expect([png.width, png.height]).toEqual([w, h]);
    for (let i = 0; i < w * h; i++) {
      const s = i * bpp;
      const want = bpp === 3 ? [px[s], px[s + 1], px[s + 2], 255] : bpp === 4 ? [...px.subarray(s, s + 4)] : bpp === 1 ? [px[s], px[s], px[s], 255] : [px[s], px[s], px[s], px[s + 1]];
      expect([...png.rgba.subarray(i * 4, i * 4 + 4)], `pixel ${i}`).toEqual(want);
    }
  });

  test('palette images look their colours up', () => {
    const plte = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const png = readPng(writePng(3, 1, 3, 1, Uint8Array.from([2, 0, 1]), plte));
    expect([...png.rgba]).toEqual([0, 0, 255, 255, 255, 0, 0, 255, 0, 255, 0, 255]);
  });

  test('a blank white image has one colour and no non-white pixel; one dark pixel counts', () => {
    const white = new Uint8Array(20 * 10 * 3).fill(255);
    expect(pixelStats(readPng(writePng(20, 10, 2, 3, white)))).toEqual({ colours: 1, nonWhite: 0, pixels: 200 });
    white.set([10, 20, 30], 3 * 57);
    expect(pixelStats(readPng(writePng(20, 10, 2, 3, white)))).toEqual({ colours: 2, nonWhite: 1, pixels: 200 });
  });

  test('refuses what it cannot read', () => {
    expect(() => readPng(Buffer.from('GIF89a........'))).toThrow(/not a PNG/);
    const sixteen = writePng(1, 1, 2, 3, new Uint8Array(3));
    sixteen[8 + 8 + 8] = 16; // IHDR bit depth
    expect(() => readPng(sixteen)).toThrow(/bit depth 16/);
  });
});
