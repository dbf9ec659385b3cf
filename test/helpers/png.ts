// A small PNG reader for checking screenshots: 8-bit greyscale, grey+alpha, RGB, RGBA or palette,
// not interlaced (what headless Chromium writes). node:zlib inflates, the five row filters are
// undone here.
import { inflateSync } from 'node:zlib';

export interface Png {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel, rows top to bottom. */
  rgba: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export function readPng(file: Buffer): Png {
  if (!file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file (bad signature)');
  let width = 0;
  let height = 0;
  let colorType = -1;
  let palette: Buffer | undefined;
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= file.length; ) {
    const len = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const data = file.subarray(at + 8, at + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, ct, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      if (depth !== 8 || CHANNELS[ct!] === undefined || interlace !== 0) throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${ct}, interlace ${interlace}`);
      colorType = ct!;
    } else if (type === 'PLTE') palette = Buffer.from(data);
    else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    at += 12 + len;
  }
  if (!width || !height || colorType < 0) throw new Error('PNG without IHDR');
  const bpp = CHANNELS[colorType]!;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length < height * (stride + 1)) throw new Error(`PNG data too short: ${raw.length} bytes for ${width}x${height}`);
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? px[row + i - bpp]! : 0;
      const b = y > 0 ? px[row - stride + i]! : 0;
      const c = i >= bpp && y > 0 ? px[row - stride + i - bpp]! : 0;
      let v = src[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`bad PNG row filter ${filter} in row ${y}`);
      px[row + i] = v & 0xff;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    const s = i * bpp;
    let rgb: [number, number, number, number];
    if (colorType === 0) rgb = [px[s]!, px[s]!, px[s]!, 255];
    else if (colorType === 4) rgb = [px[s]!, px[s]!, px[s]!, px[s + 1]!];
    else if (colorType === 2) rgb = [px[s]!, px[s + 1]!, px[s + 2]!, 255];
    else if (colorType === 6) rgb = [px[s]!, px[s + 1]!, px[s + 2]!, px[s + 3]!];
    else {
      if (!palette) throw new Error('palette PNG without PLTE');
      const p = px[s]! * 3;
      rgb = [palette[p]!, palette[p + 1]!, palette[p + 2]!, 255];
    }
    rgba.set(rgb, i * 4);
  }
  return { width, height, rgba };
}

/** How many distinct colours the image has, and how many of its pixels are not (near) white. */
export function pixelStats(png: Png): { colours: number; nonWhite: number; pixels: number } {
  const colours = new Set<number>();
  let nonWhite = 0;
  const { rgba } = png;
  for (let i = 0; i < rgba.length; i += 4) {
    colours.add((rgba[i]! << 16) | (rgba[i + 1]! << 8) | rgba[i + 2]!);
    if (rgba[i]! < 240 || rgba[i + 1]! < 240 || rgba[i + 2]! < 240) nonWhite++;
  }
  return { colours: colours.size, nonWhite, pixels: png.width * png.height };
}
