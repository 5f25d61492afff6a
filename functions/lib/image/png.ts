/**
 * A PNG decoder for the images this service mostly gets — canvas exports and
 * screenshots — built on node's native zlib. jimp's decoder (pngjs) spends
 * most of its time unfiltering and converting pixels in generic JS; this does
 * only what PNG needs, straight into RGBA, in about a fifth of the time for a
 * 280×280 canvas drawing (`npm run bench -- preprocess`). Interlaced (Adam7)
 * images are decoded here too, pass by pass: pngjs inflates them with no cap
 * on the output, so a 1 MB file declaring one pixel could inflate to a GB.
 *
 * Every chunk's CRC is checked and the inflated size must be exact, as libpng
 * requires: a corrupt upload is an error, never a plausible-looking digit.
 */
import { crc32, inflateSync } from 'node:zlib';

/** Why a PNG could not be decoded; the caller maps it to its own error type. */
export class PngFormatError extends Error {
  override name = 'PngFormatError';
}

export interface DecodedPng {
  /** RGBA, 8 bits per channel, row-major. */
  data: Buffer;
  width: number;
  height: number;
}

const SIGNATURE_BYTES = 8;
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const VALID_DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

interface Header {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

interface Chunks {
  header: Header;
  palette?: Buffer;
  transparency?: Buffer;
  data: Buffer[];
}

function readChunks(bytes: Buffer): Chunks {
  let header: Header | undefined;
  let palette: Buffer | undefined;
  let transparency: Buffer | undefined;
  const data: Buffer[] = [];
  let at = SIGNATURE_BYTES;
  for (;;) {
    if (at + 12 > bytes.length) throw new PngFormatError('the file ends before its IEND chunk');
    const length = bytes.readUInt32BE(at);
    const name = bytes.toString('latin1', at + 4, at + 8);
    // Named in error messages, so only when it is a name: the bytes are the caller's.
    const type = /^[A-Za-z]{4}$/.test(name) ? name : 'unnamed';
    const end = at + 8 + length;
    if (end + 4 > bytes.length) throw new PngFormatError(`the ${type} chunk runs past the end of the file`);
    if (crc32(bytes.subarray(at + 4, end)) !== bytes.readUInt32BE(end))
      throw new PngFormatError(`the ${type} chunk fails its CRC`);
    const body = bytes.subarray(at + 8, end);
    if (type === 'IHDR') header = readHeader(body);
    else if (type === 'PLTE') palette = body;
    else if (type === 'tRNS') transparency = body;
    else if (type === 'IDAT') data.push(body);
    else if (type === 'IEND') break;
    at = end + 4;
  }
  if (!header) throw new PngFormatError('no IHDR chunk');
  if (data.length === 0) throw new PngFormatError('no IDAT chunk');
  if (header.colorType === 3 && !palette) throw new PngFormatError('a palette image without a PLTE chunk');
  return { header, palette, transparency, data };
}

function readHeader(body: Buffer): Header {
  if (body.length !== 13) throw new PngFormatError('IHDR is not 13 bytes');
  const header = {
    width: body.readUInt32BE(0),
    height: body.readUInt32BE(4),
    depth: body[8]!,
    colorType: body[9]!,
    interlaced: body[12] === 1,
  };
  if (!VALID_DEPTHS[header.colorType]?.includes(header.depth)) {
    throw new PngFormatError(`colour type ${header.colorType} with bit depth ${header.depth} is not valid PNG`);
  }
  if (body[10] !== 0 || body[11] !== 0 || body[12]! > 1)
    throw new PngFormatError('unknown compression, filter or interlace method');
  return header;
}

/**
 * Reverses the per-row filters in place; returns the rows without their
 * filter bytes, at the start of `raw`. Each row lands before where it was
 * read from and after the row above it, so nothing is overwritten before it
 * is read, and no second image-sized buffer is allocated (the collector's
 * share of a canvas decode was a tenth). Each filter's loop is split at the
 * first pixel, and the rows above the first come from a zero row, so the hot
 * loops carry no bounds tests: this function is most of the decode time.
 */
function unfilter(inflated: Uint8Array, rowBytes: number, height: number, bpp: number): Uint8Array {
  // A plain Uint8Array view, not a Buffer: the hot loops then see one array type, which V8 keeps monomorphic.
  const raw = new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.byteLength);
  const out = raw.subarray(0, rowBytes * height);
  const zeros = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (rowBytes + 1)];
    const src = raw.subarray(y * (rowBytes + 1) + 1, (y + 1) * (rowBytes + 1));
    const row = out.subarray(y * rowBytes, (y + 1) * rowBytes);
    const up = y === 0 ? zeros : out.subarray((y - 1) * rowBytes, y * rowBytes);
    switch (filter) {
      case 0:
        row.set(src);
        break;
      case 1:
        for (let i = 0; i < bpp; i++) row[i] = src[i]!;
        for (let i = bpp; i < rowBytes; i++) row[i] = src[i]! + row[i - bpp]!;
        break;
      case 2:
        for (let i = 0; i < rowBytes; i++) row[i] = src[i]! + up[i]!;
        break;
      case 3:
        for (let i = 0; i < bpp; i++) row[i] = src[i]! + (up[i]! >> 1);
        for (let i = bpp; i < rowBytes; i++) row[i] = src[i]! + ((row[i - bpp]! + up[i]!) >> 1);
        break;
      case 4:
        if (y === 0) {
          // With no row above, Paeth predicts from the left, as Sub does.
          for (let i = 0; i < bpp; i++) row[i] = src[i]!;
          for (let i = bpp; i < rowBytes; i++) row[i] = src[i]! + row[i - bpp]!;
          break;
        }
        paeth(raw, y * (rowBytes + 1) + 1, y * rowBytes, rowBytes, bpp);
        break;
      default:
        throw new PngFormatError(`row ${y} has unknown filter type ${filter}`);
    }
  }
  return out;
}

/**
 * Paeth on one row of `bytes`, indexed in the one array (source at `from`,
 * output at `to`, the row above just before it): no per-row views in the
 * loop that most of a canvas's decode time goes to.
 */
function paeth(bytes: Uint8Array, from: number, to: number, rowBytes: number, bpp: number): void {
  const above = to - rowBytes;
  for (let i = 0; i < bpp; i++) bytes[to + i] = bytes[from + i]! + bytes[above + i]!;
  for (let i = bpp; i < rowBytes; i++) {
    const a = bytes[to + i - bpp]!;
    const b = bytes[above + i]!;
    const c = bytes[above + i - bpp]!;
    // Around transparent pixels, most of a canvas drawing, every neighbour is 0 and so is the prediction.
    if ((a | b | c) === 0) {
      bytes[to + i] = bytes[from + i]!;
      continue;
    }
    const pa = b > c ? b - c : c - b;
    const pb = a > c ? a - c : c - a;
    const pc = a + b > c + c ? a + b - c - c : c + c - a - b;
    bytes[to + i] = bytes[from + i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
  }
}

/** Sample `index` of a row of `depth`-bit samples, scaled to 0–255 (or left as a palette index). */
function sampleAt(rows: Buffer, rowStart: number, index: number, depth: number, scale: boolean): number {
  if (depth === 8) return rows[rowStart + index]!;
  // Rounded the way pngjs (jimp's decoder) rounds, so both decoders give the same pixels.
  if (depth === 16)
    return scale
      ? Math.round((rows.readUInt16BE(rowStart + index * 2) * 255) / 65535)
      : rows.readUInt16BE(rowStart + index * 2);
  const perByte = 8 / depth;
  const byte = rows[rowStart + Math.floor(index / perByte)]!;
  const value = (byte >> ((perByte - 1 - (index % perByte)) * depth)) & ((1 << depth) - 1);
  return scale ? Math.round((value * 255) / ((1 << depth) - 1)) : value;
}

function toRgba(
  rows: Buffer,
  { width, height, depth, colorType }: Header,
  rowBytes: number,
  palette?: Buffer,
  transparency?: Buffer,
): Buffer {
  if (colorType === 6 && depth === 8) return rows;
  const channels = CHANNELS[colorType]!;
  const out = Buffer.allocUnsafe(width * height * 4);
  // A tRNS chunk on a grey or RGB image names one colour (in the image's own bit depth) as transparent.
  const transparentKey = transparency && (colorType === 0 || colorType === 2) ? transparency : undefined;
  for (let y = 0; y < height; y++) {
    const rowStart = y * rowBytes;
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      const s = x * channels;
      if (colorType === 3) {
        const index = sampleAt(rows, rowStart, x, depth, false);
        if (index * 3 + 2 >= palette!.length) throw new PngFormatError(`palette index ${index} is outside the palette`);
        out[o] = palette![index * 3]!;
        out[o + 1] = palette![index * 3 + 1]!;
        out[o + 2] = palette![index * 3 + 2]!;
        out[o + 3] = transparency && index < transparency.length ? transparency[index]! : 255;
        continue;
      }
      const red = sampleAt(rows, rowStart, s, depth, true);
      out[o] = red;
      out[o + 1] = channels >= 3 ? sampleAt(rows, rowStart, s + 1, depth, true) : red;
      out[o + 2] = channels >= 3 ? sampleAt(rows, rowStart, s + 2, depth, true) : red;
      out[o + 3] =
        channels === 2 || channels === 4
          ? sampleAt(rows, rowStart, s + channels - 1, depth, true)
          : isKey(rows, rowStart, s, channels, depth, transparentKey)
            ? 0
            : 255;
    }
  }
  return out;
}

/** Whether the pixel's raw samples equal the tRNS colour. */
function isKey(
  rows: Buffer,
  rowStart: number,
  sample: number,
  channels: number,
  depth: number,
  key: Buffer | undefined,
): boolean {
  if (!key || key.length < channels * 2) return false;
  for (let c = 0; c < channels; c++) {
    if (sampleAt(rows, rowStart, sample + c, depth, false) !== key.readUInt16BE(c * 2)) return false;
  }
  return true;
}

/** Where each Adam7 pass starts, and its step across and down. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** A sub-image stored on its own, with its own filters: the whole image, or one Adam7 pass of it. */
interface Pass {
  x0: number;
  y0: number;
  dx: number;
  dy: number;
  width: number;
  height: number;
  rowBytes: number;
}

/** The passes in storage order; an interlaced image skips the passes it has no pixels for, as encoders do. */
function passesOf({ width, height, interlaced }: Header, bitsPerPixel: number): Pass[] {
  const grid = interlaced ? ADAM7 : [[0, 0, 1, 1] as const];
  return grid
    .map(([x0, y0, dx, dy]) => {
      const passWidth = Math.ceil(Math.max(0, width - x0) / dx);
      const passHeight = Math.ceil(Math.max(0, height - y0) / dy);
      return {
        x0,
        y0,
        dx,
        dy,
        width: passWidth,
        height: passHeight,
        rowBytes: Math.ceil((passWidth * bitsPerPixel) / 8),
      };
    })
    .filter((pass) => pass.width > 0 && pass.height > 0);
}

/**
 * RGBA pixels of a PNG, interlaced or not. The caller has checked the
 * signature and the declared size against its limits already.
 */
export function decodePng(bytes: Buffer): DecodedPng {
  const { header, palette, transparency, data } = readChunks(bytes);
  const { width, height, depth, colorType } = header;
  const bitsPerPixel = CHANNELS[colorType]! * depth;
  const passes = passesOf(header, bitsPerPixel);
  const expected = passes.reduce((sum, pass) => sum + (pass.rowBytes + 1) * pass.height, 0);
  let raw: Buffer;
  try {
    // Capped at the exact size, so a small file cannot inflate into gigabytes.
    raw = inflateSync(data.length === 1 ? data[0]! : Buffer.concat(data), { maxOutputLength: expected });
  } catch (error) {
    const overflow = (error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE';
    const reason = overflow ? `it holds more than the ${expected} bytes they need` : (error as Error).message;
    throw new PngFormatError(`the image data does not inflate to ${width}×${height} pixels: ${reason}`);
  }
  if (raw.length !== expected)
    throw new PngFormatError(`the image data inflates to ${raw.length} bytes, not ${expected}`);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const passPixels = (pass: Pass, start: number) => {
    const stored = raw.subarray(start, start + (pass.rowBytes + 1) * pass.height);
    const unfiltered = unfilter(stored, pass.rowBytes, pass.height, bpp);
    const rows = Buffer.from(unfiltered.buffer, unfiltered.byteOffset, unfiltered.byteLength);
    return toRgba(rows, { ...header, width: pass.width, height: pass.height }, pass.rowBytes, palette, transparency);
  };
  if (!header.interlaced) return { data: passPixels(passes[0]!, 0), width, height };
  const out = Buffer.alloc(width * height * 4);
  let start = 0;
  for (const pass of passes) {
    const rgba = passPixels(pass, start);
    for (let y = 0, from = 0; y < pass.height; y++) {
      const line = (pass.y0 + y * pass.dy) * width + pass.x0;
      for (let x = 0; x < pass.width; x++, from += 4) rgba.copy(out, (line + x * pass.dx) * 4, from, from + 4);
    }
    start += (pass.rowBytes + 1) * pass.height;
  }
  return { data: out, width, height };
}
