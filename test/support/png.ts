/**
 * PNG files written byte by byte, for what pngjs cannot write: low bit
 * depths, palettes with tRNS, broken files, and interlaced (Adam7) images.
 */
import { crc32, deflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

export interface PngOptions {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace?: number;
  /** Scanlines with their filter bytes, before compression. */
  scanlines: Uint8Array;
  extra?: Buffer[];
}

export function encodePng({
  width,
  height,
  depth,
  colorType,
  interlace = 0,
  scanlines,
  extra = [],
}: PngOptions): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([depth, colorType, 0, 0, interlace], 8);
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', header),
    ...extra,
    chunk('IDAT', deflateSync(scanlines)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Samples packed `depth` bits each, most significant first, as PNG stores a row. */
export function packSamples(samples: readonly number[], depth: number): Buffer {
  if (depth === 16) {
    const bytes = Buffer.alloc(samples.length * 2);
    samples.forEach((value, i) => bytes.writeUInt16BE(value, i * 2));
    return bytes;
  }
  const bytes = Buffer.alloc(Math.ceil((samples.length * depth) / 8));
  samples.forEach((value, i) => {
    const bit = i * depth;
    bytes[bit >> 3]! |= value << (8 - depth - (bit & 7));
  });
  return bytes;
}

/** Rows of packed samples, each behind filter byte 0. */
export function unfilteredRows(rows: number[][], depth: number): Uint8Array {
  return Buffer.concat(rows.map((samples) => Buffer.concat([Buffer.alloc(1), packSamples(samples, depth)])));
}

const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** One row behind its filter byte, filtered with `type` against the row above (zeros for a pass's first row). */
function filterRow(type: number, row: Buffer, up: Buffer, bpp: number): Buffer {
  const out = Buffer.alloc(row.length + 1);
  out[0] = type;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp]! : 0;
    const b = up[i]!;
    const c = i >= bpp ? up[i - bpp]! : 0;
    const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][type]!;
    out[i + 1] = (row[i]! - predictor) & 255;
  }
  return out;
}

export interface Samples {
  width: number;
  height: number;
  depth: number;
  channels: number;
  /** Sample `c` of pixel (x, y), in the image's own bit depth. */
  sample: (x: number, y: number, c: number) => number;
}

/**
 * The scanlines of an image, Adam7-interlaced or not, each row filtered with
 * the next of the five filter types in turn so every filter meets a pass's
 * first row.
 */
export function scanlinesOf({ width, height, depth, channels, sample }: Samples, interlaced: boolean): Buffer {
  const bpp = Math.max(1, (channels * depth) >> 3);
  const passes = interlaced ? ADAM7 : [[0, 0, 1, 1] as const];
  const out: Buffer[] = [];
  let filter = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const passWidth = Math.ceil(Math.max(0, width - x0) / dx);
    const passHeight = Math.ceil(Math.max(0, height - y0) / dy);
    if (passWidth === 0 || passHeight === 0) continue;
    let up: Buffer = Buffer.alloc(Math.ceil((passWidth * channels * depth) / 8));
    for (let y = y0; y < height; y += dy) {
      const samples: number[] = [];
      for (let x = x0; x < width; x += dx) for (let c = 0; c < channels; c++) samples.push(sample(x, y, c));
      const row = packSamples(samples, depth);
      out.push(filterRow(filter++ % 5, row, up, bpp));
      up = row;
    }
  }
  return Buffer.concat(out);
}
