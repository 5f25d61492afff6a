/**
 * Image format and dimensions from the first bytes of a file, without
 * decoding: the size limits must hold before a decoder allocates anything,
 * because a few hundred bytes of PNG can claim 100000×100000 pixels.
 */
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../errors.ts';

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'bmp' | 'webp';

/** EXIF orientation: how the stored pixels are turned for display; 1 means as stored. */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

export interface ImageHeader {
  format: ImageFormat;
  /** As stored, before any orientation is applied. */
  width: number;
  height: number;
  /** From a JPEG's EXIF block, which phone cameras use instead of rotating the pixels; 1 otherwise. */
  orientation: Orientation;
  /** A JPEG's colour components, whose sampling factors decide how much memory its decode takes. */
  components?: readonly Sampling[];
}

/** A JPEG component's horizontal and vertical sampling factors: 2 for a full-resolution luma beside halved chroma. */
export interface Sampling {
  h: number;
  v: number;
}

/** The bytes do not start like any image format we know. */
export class UnsupportedImageError extends UnsupportedMediaTypeError {
  constructor(message: string) {
    super(message, 'unsupported_image');
  }
}

/** The bytes start like an image but the file is malformed or truncated. */
export class CorruptImageError extends BadRequestError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 'corrupt_image');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** Legal, but more work to decode than any image people send would need. */
export class ImageTooComplexError extends PayloadTooLargeError {
  constructor(message: string) {
    super(message, 'image_too_complex');
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((byte, i) => bytes[at + i] === byte);
}

function ascii(text: string): number[] {
  return [...text].map((c) => c.charCodeAt(0));
}

/** The format named by the file's magic bytes, or undefined. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (startsWith(bytes, ascii('BM'))) return 'bmp';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'webp';
  return undefined;
}

/**
 * Format and dimensions of an image. Throws UnsupportedImageError when no
 * known signature matches and CorruptImageError when the header is truncated,
 * malformed or declares an empty image.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw new UnsupportedImageError(
      bytes.length === 0 ? 'the image is empty' : 'not a recognised image: send PNG, JPEG, GIF or BMP',
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const reader = new HeaderReader(view, format);
  const { width, height, orientation = 1, components } = SIZE_READERS[format](reader);
  if (!(width > 0 && height > 0)) {
    throw new CorruptImageError(`${format} header declares a ${width}×${height} image`);
  }
  return components === undefined
    ? { format, width, height, orientation }
    : { format, width, height, orientation, components };
}

/** Bounds-checked reads: a short file becomes a CorruptImageError, not a RangeError. */
class HeaderReader {
  constructor(
    readonly view: DataView,
    readonly format: ImageFormat,
  ) {}

  get length(): number {
    return this.view.byteLength;
  }

  private need(offset: number, size: number): void {
    if (offset < 0 || offset + size > this.view.byteLength) {
      throw new CorruptImageError(`${this.format} header is truncated`);
    }
  }

  u8(offset: number): number {
    this.need(offset, 1);
    return this.view.getUint8(offset);
  }

  u16be(offset: number): number {
    this.need(offset, 2);
    return this.view.getUint16(offset);
  }

  u16le(offset: number): number {
    this.need(offset, 2);
    return this.view.getUint16(offset, true);
  }

  u24le(offset: number): number {
    return this.u16le(offset) | (this.u8(offset + 2) << 16);
  }

  u32be(offset: number): number {
    this.need(offset, 4);
    return this.view.getUint32(offset);
  }

  u32le(offset: number): number {
    this.need(offset, 4);
    return this.view.getUint32(offset, true);
  }

  i32le(offset: number): number {
    this.need(offset, 4);
    return this.view.getInt32(offset, true);
  }

  tag(offset: number): string {
    this.need(offset, 4);
    return String.fromCharCode(this.u8(offset), this.u8(offset + 1), this.u8(offset + 2), this.u8(offset + 3));
  }

  corrupt(message: string): CorruptImageError {
    return new CorruptImageError(`${this.format}: ${message}`);
  }
}

type Size = { width: number; height: number; orientation?: Orientation; components?: Sampling[] };

const SIZE_READERS: Record<ImageFormat, (r: HeaderReader) => Size> = {
  png: pngSize,
  jpeg: jpegSize,
  gif: gifSize,
  bmp: bmpSize,
  webp: webpSize,
};

/**
 * IHDR must be the first chunk. The chunk list is walked to the end because
 * pngjs takes its dimensions from the last IHDR it meets, so a second one
 * could smuggle in a size the first did not declare.
 */
function pngSize(r: HeaderReader): Size {
  const first = 8;
  if (r.u32be(first) !== 13 || r.tag(first + 4) !== 'IHDR') throw r.corrupt('first chunk is not IHDR');
  const size = { width: r.u32be(first + 8), height: r.u32be(first + 12) };
  let offset = first + 8 + 13 + 4;
  while (offset + 8 <= r.length) {
    const type = r.tag(offset + 4);
    if (type === 'IHDR') throw r.corrupt('more than one IHDR chunk');
    if (type === 'IEND') break;
    offset += 8 + r.u32be(offset) + 4;
  }
  return size;
}

/** Start-of-frame markers carry the dimensions; DHT (C4), JPG (C8) and DAC (CC) share the range but do not. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Baseline, extended and progressive Huffman-coded frames; jpeg-js cannot decode lossless, hierarchical or arithmetic ones. */
const DECODABLE_FRAMES = [0xc0, 0xc1, 0xc2];
/** Greyscale, YCbCr/RGB and CMYK/YCCK: what cameras, phones and editors write. */
const COMPONENT_COUNTS = [1, 3, 4];
/** 2 is 4:2:0 chroma, what phones and libjpeg write; the standard allows 4, which no common encoder uses. */
const MAX_SAMPLING = 2;
/**
 * jpeg-js walks every block of a scan's components for each scan, so the
 * scan count multiplies the decode's cost. libjpeg's progressive script has
 * 10 scans for colour and 2 + 4 per component (18 for CMYK) otherwise, and
 * mozjpeg's searched scripts stay in that range; libjpeg-turbo's own fuzzers
 * allow 500 on images of at most 1 MP, where ours may have 16 MP.
 */
export const MAX_JPEG_SCANS = 100;
const SOS = 0xda;
const EOI = 0xd9;

/**
 * The whole marker structure is walked, not just up to the frame header: a
 * second frame header or thousands of scans later in the file would be work
 * the decoder does before noticing anything wrong. A file that ends early
 * stops the walk, as it stops the decoder, which makes what it can of it.
 */
function jpegSize(r: HeaderReader): Size {
  let offset = 2;
  let orientation: Orientation = 1;
  let frame: Size | undefined;
  let scans = 0;
  while (!(frame && offset >= r.length)) {
    if (r.u8(offset) !== 0xff) throw r.corrupt(`expected a marker at byte ${offset}`);
    let marker = r.u8(offset + 1);
    // Any number of 0xFF fill bytes may precede a marker.
    while (marker === 0xff) marker = r.u8(++offset + 1);
    offset += 2;
    const standalone = marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
    if (standalone) continue;
    if (marker === EOI && frame) break;
    if (marker === EOI || (marker === SOS && !frame)) throw r.corrupt('no frame header before the image data');
    const length = r.u16be(offset);
    if (length < 2) throw r.corrupt(`segment length ${length} at byte ${offset}`);
    if (isStartOfFrame(marker)) {
      if (frame) throw r.corrupt('more than one frame header');
      frame = jpegFrame(r, marker, offset, length);
    }
    if (marker === SOS) {
      if (++scans > MAX_JPEG_SCANS)
        throw new ImageTooComplexError(`the jpeg image has more than ${MAX_JPEG_SCANS} scans`);
      offset = afterEntropyCodedData(r, offset + length);
      continue;
    }
    if (marker === APP1) orientation = exifOrientation(r, offset + 2, offset + length) ?? orientation;
    offset += length;
  }
  // The loop ends only once there is a frame.
  return { ...frame!, orientation };
}

/** Dimensions and sampling factors from a frame header, refusing what jpeg-js cannot decode or would decode at great cost. */
function jpegFrame(r: HeaderReader, marker: number, offset: number, length: number): Size {
  if (!DECODABLE_FRAMES.includes(marker)) {
    const kind = `SOF${marker - 0xc0} (lossless, hierarchical or arithmetic-coded)`;
    throw new UnsupportedImageError(`jpeg: ${kind} is not supported: send baseline or progressive`);
  }
  const count = r.u8(offset + 7);
  if (length !== 8 + 3 * count) throw r.corrupt(`a ${length}-byte frame header for ${count} components`);
  if (!COMPONENT_COUNTS.includes(count)) {
    throw new UnsupportedImageError(
      `jpeg: ${count} colour components are not supported: send ${COMPONENT_COUNTS.join(', ')}`,
    );
  }
  const components: Sampling[] = [];
  for (let i = 0; i < count; i++) {
    const factors = r.u8(offset + 9 + 3 * i);
    const sampling = { h: factors >> 4, v: factors & 0x0f };
    if (sampling.h < 1 || sampling.v < 1) throw r.corrupt(`sampling factors ${sampling.h}×${sampling.v}`);
    if (sampling.h > MAX_SAMPLING || sampling.v > MAX_SAMPLING) {
      const limit = `${MAX_SAMPLING}×${MAX_SAMPLING}`;
      throw new UnsupportedImageError(
        `jpeg: sampling factors ${sampling.h}×${sampling.v} are not supported: at most ${limit}`,
      );
    }
    components.push(sampling);
  }
  // A zero height would be defined later by a DNL marker, which the decoder does not support.
  return { height: r.u16be(offset + 3), width: r.u16be(offset + 5), components };
}

/**
 * Where the entropy-coded data that starts at `start` ends: at the first
 * marker that is not a restart. Inside the data an 0xFF byte is always
 * followed by a stuffed 0x00, so 0xFF and anything else is a marker.
 */
function afterEntropyCodedData(r: HeaderReader, start: number): number {
  const bytes = new Uint8Array(r.view.buffer, r.view.byteOffset, r.view.byteLength);
  for (let at = bytes.indexOf(0xff, start); at !== -1; at = bytes.indexOf(0xff, at + 1)) {
    const next = bytes[at + 1];
    if (next === undefined) break;
    if (next !== 0x00 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) return at;
  }
  return r.length;
}

const APP1 = 0xe1;
const EXIF_ORIENTATION_TAG = 0x0112;

/**
 * The Orientation tag of the EXIF block in the APP1 segment spanning
 * [start, end), if that segment is EXIF and has one. A malformed EXIF block
 * is ignored, as viewers do, rather than failing the image.
 */
function exifOrientation(r: HeaderReader, start: number, end: number): Orientation | undefined {
  if (end - start < 14 || r.tag(start) !== 'Exif' || r.u16be(start + 4) !== 0) return undefined;
  const tiff = start + 6;
  const order = r.u16be(tiff);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined;
  const little = order === 0x4949;
  const u16 = (at: number) => (little ? r.u16le(at) : r.u16be(at));
  const u32 = (at: number) => (little ? r.u32le(at) : r.u32be(at));
  if (u16(tiff + 2) !== 42) return undefined;
  const directory = tiff + u32(tiff + 4);
  if (directory + 2 > end) return undefined;
  const entries = u16(directory);
  for (let i = 0; i < entries; i++) {
    const entry = directory + 2 + 12 * i;
    if (entry + 12 > end) return undefined;
    if (u16(entry) !== EXIF_ORIENTATION_TAG) continue;
    const value = u16(entry + 8);
    return value >= 1 && value <= 8 ? (value as Orientation) : undefined;
  }
  return undefined;
}

/**
 * The decoder sizes its output by the logical screen but decodes the first
 * frame at the frame's own size, so that frame must fit inside the screen.
 */
function gifSize(r: HeaderReader): Size {
  const size = { width: r.u16le(6), height: r.u16le(8) };
  const packed = r.u8(10);
  let offset = 13 + (packed & 0x80 ? 3 * (2 << (packed & 0x07)) : 0);
  for (;;) {
    const block = r.u8(offset);
    if (block === 0x2c) {
      const left = r.u16le(offset + 1);
      const top = r.u16le(offset + 3);
      const frameWidth = r.u16le(offset + 5);
      const frameHeight = r.u16le(offset + 7);
      if (left + frameWidth > size.width || top + frameHeight > size.height) {
        throw r.corrupt(
          `first frame ${frameWidth}×${frameHeight}+${left}+${top} lies outside the ${size.width}×${size.height} screen`,
        );
      }
      return size;
    }
    if (block !== 0x21)
      throw r.corrupt(block === 0x3b ? 'no image in the file' : `unexpected block 0x${block.toString(16)}`);
    // Extension: a label, then data sub-blocks until a zero-length one.
    offset += 2;
    for (let sub = r.u8(offset); sub !== 0; sub = r.u8(offset)) offset += sub + 1;
    offset += 1;
  }
}

const BMP_CORE_HEADER = 12;

/** A negative height means rows are stored top-down; the image is as tall either way. */
function bmpSize(r: HeaderReader): Size {
  const headerSize = r.u32le(14);
  if (headerSize === BMP_CORE_HEADER) return { width: r.u16le(18), height: r.u16le(20) };
  if (headerSize < 40) throw r.corrupt(`unknown header size ${headerSize}`);
  const height = r.i32le(22);
  return { width: r.i32le(18), height: Math.abs(height) };
}

/** Lossy (VP8), lossless (VP8L) and extended (VP8X) files keep their size in different places. */
function webpSize(r: HeaderReader): Size {
  const chunk = r.tag(12);
  if (chunk === 'VP8 ') {
    if (r.u8(23) !== 0x9d || r.u8(24) !== 0x01 || r.u8(25) !== 0x2a) throw r.corrupt('missing VP8 start code');
    return { width: r.u16le(26) & 0x3fff, height: r.u16le(28) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (r.u8(20) !== 0x2f) throw r.corrupt('missing VP8L signature');
    const bits = r.u32le(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') return { width: r.u24le(24) + 1, height: r.u24le(27) + 1 };
  throw r.corrupt(`unknown chunk ${JSON.stringify(chunk)}`);
}
