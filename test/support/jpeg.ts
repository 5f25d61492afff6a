/**
 * JPEG files put together marker by marker, for the shapes no encoder at hand
 * writes: any component count and sampling factors in the frame header, and
 * progressive files with as many scans as wanted, each as small as a scan can
 * be (one end-of-band run per 32767 blocks).
 */
export interface Sampling {
  h: number;
  v: number;
}

export interface FrameOptions {
  width: number;
  height: number;
  components: readonly Sampling[];
  /** The start-of-frame marker's second byte: C0 baseline, C2 progressive, others unsupported. */
  marker?: number;
}

function segment(marker: number, body: readonly number[] | Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, Buffer.from(body)]);
}

export function frameHeader({ width, height, components, marker = 0xc2 }: FrameOptions): Buffer {
  const body = Buffer.alloc(6 + 3 * components.length);
  body[0] = 8;
  body.writeUInt16BE(height, 1);
  body.writeUInt16BE(width, 3);
  body[5] = components.length;
  components.forEach(({ h, v }, i) => body.set([i + 1, ((h & 15) << 4) | (v & 15), 0], 6 + 3 * i));
  return segment(marker, body);
}

/** The longest end-of-band run one code can give: symbol 0xE0 and 14 extra bits. */
const LONGEST_RUN = 32767;

/** Bits written most significant first, 0xFF bytes stuffed with a 0x00, the last byte padded with ones. */
function entropyCoded(bits: string): Buffer {
  const bytes: number[] = [];
  const padded = bits + '1'.repeat((8 - (bits.length % 8)) % 8);
  for (let i = 0; i < padded.length; i += 8) {
    const byte = parseInt(padded.slice(i, i + 8), 2);
    bytes.push(byte);
    if (byte === 0xff) bytes.push(0);
  }
  return Buffer.from(bytes);
}

/** How many 8×8 blocks jpeg-js walks for a scan of component `c` alone. */
function blocksOf({ width, height, components }: FrameOptions, c: number): number {
  const maxH = Math.max(...components.map(({ h }) => h));
  const maxV = Math.max(...components.map(({ v }) => v));
  const { h, v } = components[c]!;
  return Math.ceil((Math.ceil(width / 8) * h) / maxH) * Math.ceil((Math.ceil(height / 8) * v) / maxV);
}

/**
 * A progressive JPEG of `scans` AC scans, one component each in turn, that
 * skip every block with end-of-band runs: the image is flat grey, and each
 * scan is about 16 bytes however large the frame.
 */
export function progressiveJpeg(frame: FrameOptions, scans: number): Buffer {
  const quantisation = segment(0xdb, [0, ...new Array(64).fill(1)]);
  // One code each, 1 bit long: DC difference 0, and AC symbol 0xE0 (an end-of-band run).
  const tables = segment(0xc4, [0x00, 1, ...new Array(15).fill(0), 0x00, 0x10, 1, ...new Array(15).fill(0), 0xe0]);
  const parts = [Buffer.from([0xff, 0xd8]), quantisation, frameHeader({ ...frame, marker: 0xc2 }), tables];
  for (let s = 0; s < scans; s++) {
    const c = s % frame.components.length;
    const runs = Math.ceil(blocksOf(frame, c) / LONGEST_RUN);
    parts.push(segment(0xda, [1, c + 1, 0x00, 1, 63, 0]), entropyCoded(`0${'1'.repeat(14)}`.repeat(runs)));
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}
