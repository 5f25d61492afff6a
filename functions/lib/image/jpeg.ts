/**
 * A JPEG decoder that gives only what the model needs: the luma plane, at
 * 1/1, 1/2, 1/4 or 1/8 of the stored size. The DCT makes that cheap: the top
 * left N×N coefficients of a block are its N×N-pixel version (libjpeg's
 * scaled IDCT), so a 1/4-scale decode runs a 2×2 inverse transform per block
 * where jpeg-js runs an 8×8 one, converts no colour and writes no RGBA. In a
 * YCbCr or greyscale file the first component is the luma, so chroma is
 * entropy-decoded only where it shares a scan with luma, and never
 * transformed; a progressive file's chroma scans, and its luma scans of
 * frequencies the scale drops, are skipped without decoding.
 *
 * Baseline and progressive Huffman frames, 8-bit, restart intervals. Files
 * whose first component is not luma (CMYK, YCCK, Adobe RGB) are left to
 * jpeg-js (`decodeJpegLuma` returns undefined). The caller has checked the
 * header (frame size, components, sampling, scan count) already; each scan
 * decodes at most its frame's blocks, and a stream that runs dry reads as
 * zeros, as in libjpeg, so damaged data cannot make the work grow.
 */

/** Damaged or unsupported data inside a file whose header passed. */
export class JpegFormatError extends Error {
  override name = 'JpegFormatError';
}

/** The luma plane, 0–255, row-major. */
export interface JpegLuma {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

export type JpegScale = 1 | 2 | 4 | 8;

/** The natural (row-major) position of each zigzag index. */
const ZIGZAG = Uint8Array.from([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47,
  55, 62, 63,
]);

/** How many zigzag coefficients cover the top-left N×N of a block, for N = 8 / scale. */
const COEFFICIENTS_FOR: Record<JpegScale, number> = { 1: 64, 2: 25, 4: 5, 8: 1 };

/** Fast Huffman lookup width: codes up to this long decode with one table read. */
const LOOKUP_BITS = 9;

interface HuffmanTable {
  /** (length << 8) | symbol for every LOOKUP_BITS-bit prefix that starts a short code; 0 otherwise. */
  lookup: Uint16Array;
  /** Per code length, the largest code of that length (-1 if none). */
  maxCode: Int32Array;
  /** Per code length, what to add to a code of that length to get its symbol's index. */
  offset: Int32Array;
  symbols: Uint8Array;
}

function buildHuffman(counts: Uint8Array, symbols: Uint8Array): HuffmanTable {
  const lookup = new Uint16Array(1 << LOOKUP_BITS);
  const maxCode = new Int32Array(18).fill(-1);
  const offset = new Int32Array(18);
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    const count = counts[length - 1]!;
    offset[length] = k - code;
    for (let i = 0; i < count; i++, k++, code++) {
      if (length <= LOOKUP_BITS) {
        const shift = LOOKUP_BITS - length;
        const entry = (length << 8) | symbols[k]!;
        for (let fill = code << shift, end = (code + 1) << shift; fill < end; fill++) lookup[fill] = entry;
      }
    }
    if (count > 0) maxCode[length] = code - 1;
    if (code > 1 << length) throw new JpegFormatError('a Huffman table has more codes than its lengths allow');
    code <<= 1;
  }
  // Ends the slow path's search at 17 bits for a code no table holds.
  maxCode[17] = 0x7fffffff;
  return { lookup, maxCode, offset, symbols };
}

/**
 * Bits of the entropy-coded data, most significant first, with stuffed
 * zero bytes removed. At a marker it stops and reads zeros from then on.
 */
class BitReader {
  private acc = 0;
  private count = 0;
  /** Set once a marker (or the end of the file) is reached. */
  private dry = false;

  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
  ) {}

  private fill(): void {
    const bytes = this.bytes;
    while (this.count <= 24) {
      let byte = 0;
      if (!this.dry) {
        if (this.pos >= bytes.length) this.dry = true;
        else {
          byte = bytes[this.pos]!;
          if (byte !== 0xff) this.pos++;
          else if (bytes[this.pos + 1] === 0) this.pos += 2;
          else {
            this.dry = true;
            byte = 0;
          }
        }
      }
      this.acc = (this.acc << 8) | byte;
      this.count += 8;
    }
  }

  bits(n: number): number {
    if (n === 0) return 0;
    if (this.count < n) this.fill();
    this.count -= n;
    return (this.acc >>> this.count) & ((1 << n) - 1);
  }

  bit(): number {
    if (this.count < 1) this.fill();
    this.count--;
    return (this.acc >>> this.count) & 1;
  }

  /** A signed value of `n` bits (JPEG's RECEIVE and EXTEND). */
  signed(n: number): number {
    if (n === 0) return 0;
    if (n > 16) throw new JpegFormatError(`a ${n}-bit coefficient`);
    const v = this.bits(n);
    return v < 1 << (n - 1) ? v - (1 << n) + 1 : v;
  }

  decode(table: HuffmanTable): number {
    if (this.count < 16) this.fill();
    const entry = table.lookup[(this.acc >>> (this.count - LOOKUP_BITS)) & ((1 << LOOKUP_BITS) - 1)]!;
    if (entry !== 0) {
      this.count -= entry >> 8;
      return entry & 0xff;
    }
    let length = LOOKUP_BITS + 1;
    let code = (this.acc >>> (this.count - length)) & ((1 << length) - 1);
    while (code > table.maxCode[length]!) {
      length++;
      code = (this.acc >>> (this.count - length)) & ((1 << length) - 1);
    }
    if (length > 16) throw new JpegFormatError('a Huffman code no table defines');
    this.count -= length;
    return table.symbols[code + table.offset[length]!]!;
  }

  /** Drops the bits left in the current byte and starts over after a restart marker, if one is next. */
  restart(): void {
    this.acc = 0;
    this.count = 0;
    this.dry = false;
    const bytes = this.bytes;
    while (this.pos + 1 < bytes.length && !(bytes[this.pos] === 0xff && bytes[this.pos + 1] !== 0)) this.pos++;
    if (bytes[this.pos + 1]! >= 0xd0 && bytes[this.pos + 1]! <= 0xd7) this.pos += 2;
  }
}

interface Component {
  id: number;
  h: number;
  v: number;
  quantTable: number;
  blocksPerLine: number;
  blocksPerColumn: number;
  /** Blocks per line and column padded to whole MCUs: the layout of `coefficients`. */
  paddedLine: number;
  paddedColumn: number;
  dcTable?: HuffmanTable;
  acTable?: HuffmanTable;
  pred: number;
}

interface Frame {
  progressive: boolean;
  width: number;
  height: number;
  components: Component[];
  mcusPerLine: number;
  mcusPerColumn: number;
  maxH: number;
  maxV: number;
}

/** Where the entropy-coded data from `start` ends: the first marker that is not a restart. */
function afterScan(bytes: Uint8Array, start: number): number {
  for (let at = bytes.indexOf(0xff, start); at !== -1; at = bytes.indexOf(0xff, at + 1)) {
    const next = bytes[at + 1];
    if (next === undefined) break;
    if (next !== 0x00 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) return at;
  }
  return bytes.length;
}

/**
 * idct[x * n + u]: the weight of frequency u at output pixel x of an n-point
 * inverse DCT of an 8-point block's first n coefficients (libjpeg's
 * reduced-size IDCT), times that frequency's mean over the 8/n full-size
 * pixels the output pixel covers: each output pixel is then the average of
 * its full-size pixels, as the transform's own box averaging would make it,
 * less the frequencies the scale drops.
 */
function idctTable(n: number): Float32Array {
  const table = new Float32Array(n * n);
  const span = 8 / n;
  for (let x = 0; x < n; x++) {
    for (let u = 0; u < n; u++) {
      const angle = (u * Math.PI) / 16;
      const boxMean = u === 0 ? 1 : Math.sin(span * angle) / (span * Math.sin(angle));
      table[x * n + u] = ((u === 0 ? Math.SQRT1_2 : 1) / 2) * boxMean * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
    }
  }
  return table;
}

/** AAN's prescaling of each coefficient: cos(kπ/16)·√2 per axis, 1 for k = 0. */
const AAN_SCALE = Float32Array.from({ length: 64 }, (_, i) => {
  const factor = (k: number) => (k === 0 ? 1 : Math.cos((k * Math.PI) / 16) * Math.SQRT2);
  return factor(i >> 3) * factor(i & 7);
});

/** One 8-point AAN inverse DCT in place, on block[start], block[start + step], … (libjpeg 6b's jidctflt.c). */
function aan(block: Float32Array, start: number, step: number): void {
  const s1 = start + step;
  const s2 = s1 + step;
  const s3 = s2 + step;
  const s4 = s3 + step;
  const s5 = s4 + step;
  const s6 = s5 + step;
  const s7 = s6 + step;
  let tmp0 = block[start]!;
  let tmp1 = block[s2]!;
  let tmp2 = block[s4]!;
  let tmp3 = block[s6]!;
  let tmp10 = tmp0 + tmp2;
  let tmp11 = tmp0 - tmp2;
  const tmp13 = tmp1 + tmp3;
  let tmp12 = (tmp1 - tmp3) * Math.SQRT2 - tmp13;
  tmp0 = tmp10 + tmp13;
  tmp3 = tmp10 - tmp13;
  tmp1 = tmp11 + tmp12;
  tmp2 = tmp11 - tmp12;
  const tmp4 = block[s1]!;
  let tmp5 = block[s3]!;
  let tmp6 = block[s5]!;
  let tmp7 = block[s7]!;
  const z13 = tmp6 + tmp5;
  const z10 = tmp6 - tmp5;
  const z11 = tmp4 + tmp7;
  const z12 = tmp4 - tmp7;
  tmp7 = z11 + z13;
  tmp11 = (z11 - z13) * Math.SQRT2;
  const z5 = (z10 + z12) * 1.847759065;
  tmp10 = 1.0823922 * z12 - z5;
  tmp12 = -2.61312593 * z10 + z5;
  tmp6 = tmp12 - tmp7;
  tmp5 = tmp11 - tmp6;
  const tmp4b = tmp10 + tmp5;
  block[start] = tmp0 + tmp7;
  block[s7] = tmp0 - tmp7;
  block[s1] = tmp1 + tmp6;
  block[s6] = tmp1 - tmp6;
  block[s2] = tmp2 + tmp5;
  block[s5] = tmp2 - tmp5;
  block[s4] = tmp3 + tmp4b;
  block[s3] = tmp3 - tmp4b;
}

/**
 * The scale for a decode of `width`×`height`: the smallest (largest
 * denominator) that keeps the short side at least `minSide` pixels.
 */
export function chooseJpegScale(width: number, height: number, minSide: number): JpegScale {
  const side = Math.min(width, height);
  for (const scale of [8, 4, 2] as const) if (side / scale >= minSide) return scale;
  return 1;
}

/**
 * The luma of a baseline or progressive JPEG at 1/`scale` of its size
 * (rounded up, as libjpeg does), or undefined when the file's first
 * component is not luma and another decoder must convert its colours.
 */
export function decodeJpegLuma(bytes: Uint8Array, scale: JpegScale): JpegLuma | undefined {
  const quant: (Uint16Array | undefined)[] = [];
  const dcTables: (HuffmanTable | undefined)[] = [];
  const acTables: (HuffmanTable | undefined)[] = [];
  let frame: Frame | undefined;
  let adobeTransform: number | undefined;
  let restartInterval = 0;
  let output: Output | undefined;
  let pos = 2;
  const u16 = (at: number) => {
    if (at + 2 > bytes.length) throw new JpegFormatError('the file ends inside a segment');
    return (bytes[at]! << 8) | bytes[at + 1]!;
  };
  for (;;) {
    if (pos + 1 >= bytes.length) break;
    if (bytes[pos] !== 0xff) throw new JpegFormatError(`expected a marker at byte ${pos}`);
    const marker = bytes[pos + 1]!;
    pos += 2;
    if (marker === 0xff) {
      pos--;
      continue;
    }
    if (marker === 0xd9) break;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue;
    const length = u16(pos);
    const end = pos + length;
    if (length < 2 || end > bytes.length) throw new JpegFormatError(`a segment of ${length} bytes at byte ${pos}`);
    const at = pos + 2;
    switch (marker) {
      case 0xdb: // DQT
        for (let p = at; p < end; ) {
          const precision = bytes[p]! >> 4;
          const id = bytes[p]! & 15;
          const table = new Uint16Array(64);
          for (let k = 0; k < 64; k++) table[k] = precision ? u16(p + 1 + 2 * k) : bytes[p + 1 + k]!;
          quant[id & 3] = table;
          p += 1 + (precision ? 128 : 64);
        }
        break;
      case 0xc4: // DHT
        for (let p = at; p < end; ) {
          const kind = bytes[p]! >> 4;
          const id = bytes[p]! & 15;
          const counts = bytes.subarray(p + 1, p + 17);
          const total = counts.reduce((sum, c) => sum + c, 0);
          if (p + 17 + total > end) throw new JpegFormatError('a Huffman table runs past its segment');
          const table = buildHuffman(counts, bytes.subarray(p + 17, p + 17 + total));
          (kind === 0 ? dcTables : acTables)[id & 3] = table;
          p += 17 + total;
        }
        break;
      case 0xdd: // DRI
        restartInterval = u16(at);
        break;
      case 0xee: // APP14: Adobe's colour transform flag
        if (length >= 14 && String.fromCharCode(...bytes.subarray(at, at + 5)) === 'Adobe') {
          adobeTransform = bytes[at + 11];
        }
        break;
      case 0xc0:
      case 0xc1:
      case 0xc2: {
        if (frame) throw new JpegFormatError('more than one frame header');
        frame = readFrame(bytes, at, marker === 0xc2, u16);
        if (!isLuma(frame, adobeTransform)) return undefined;
        output = new Output(frame, scale);
        break;
      }
      case 0xda: {
        if (!frame || !output) throw new JpegFormatError('a scan before the frame header');
        pos = decodeScan(bytes, at, frame, output, { dcTables, acTables, quant, restartInterval });
        continue;
      }
      default:
        if (marker >= 0xc3 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
          throw new JpegFormatError(`unsupported frame type SOF${marker - 0xc0}`);
        }
    }
    pos = end;
  }
  if (!frame || !output) throw new JpegFormatError('no frame header');
  return output.finish(quant);
}

/** Grey, or YCbCr (what JFIF means; Adobe's flag 1, or no flag and component ids that do not spell RGB). */
function isLuma(frame: Frame, adobeTransform: number | undefined): boolean {
  const { components } = frame;
  if (components.length === 1) return true;
  if (components.length !== 3) return false;
  const [first] = components;
  // The luma plane must be the full-resolution one, as every encoder writes it.
  if (first!.h !== frame.maxH || first!.v !== frame.maxV) return false;
  if (adobeTransform !== undefined) return adobeTransform === 1;
  const ids = String.fromCharCode(...components.map(({ id }) => id));
  return ids !== 'RGB';
}

function readFrame(bytes: Uint8Array, at: number, progressive: boolean, u16: (at: number) => number): Frame {
  if (bytes[at] !== 8) throw new JpegFormatError(`${bytes[at]}-bit samples are not supported`);
  const height = u16(at + 1);
  const width = u16(at + 3);
  const count = bytes[at + 5]!;
  if (width === 0 || height === 0 || count === 0) throw new JpegFormatError('an empty frame');
  const components: Component[] = [];
  for (let i = 0; i < count; i++) {
    const p = at + 6 + 3 * i;
    const h = bytes[p + 1]! >> 4;
    const v = bytes[p + 1]! & 15;
    if (h < 1 || h > 4 || v < 1 || v > 4) throw new JpegFormatError(`sampling factors ${h}×${v}`);
    components.push({
      id: bytes[p]!,
      h,
      v,
      quantTable: bytes[p + 2]! & 3,
      blocksPerLine: 0,
      blocksPerColumn: 0,
      paddedLine: 0,
      paddedColumn: 0,
      pred: 0,
    });
  }
  const maxH = Math.max(...components.map(({ h }) => h));
  const maxV = Math.max(...components.map(({ v }) => v));
  const mcusPerLine = Math.ceil(width / 8 / maxH);
  const mcusPerColumn = Math.ceil(height / 8 / maxV);
  for (const c of components) {
    c.blocksPerLine = Math.ceil(Math.ceil((width * c.h) / maxH) / 8);
    c.blocksPerColumn = Math.ceil(Math.ceil((height * c.v) / maxV) / 8);
    c.paddedLine = mcusPerLine * c.h;
    c.paddedColumn = mcusPerColumn * c.v;
  }
  return { progressive, width, height, components, mcusPerLine, mcusPerColumn, maxH, maxV };
}

/**
 * Where the luma goes. A baseline file's blocks are transformed as they are
 * decoded, straight into the plane; a progressive file's coefficients are
 * kept (64 per block, since refinement scans need every coefficient of their
 * band) and transformed once all scans are in.
 */
class Output {
  readonly size: number;
  readonly width: number;
  readonly height: number;
  /** Clamped: a store rounds to the nearest level and clamps to 0–255, as the IDCT's output must be. */
  readonly plane: Uint8ClampedArray;
  readonly coefficients: Int16Array | undefined;
  /** Zigzag coefficients the scale uses: the rest are decoded (baseline) or skipped (progressive) but never kept. */
  readonly needed: number;
  private readonly table: Float32Array;
  private readonly block: Float32Array;
  private readonly rows: Float32Array;

  constructor(
    readonly frame: Frame,
    scale: JpegScale,
  ) {
    this.size = 8 / scale;
    this.width = Math.ceil(frame.width / scale);
    this.height = Math.ceil(frame.height / scale);
    this.plane = new Uint8ClampedArray(this.width * this.height);
    const luma = frame.components[0]!;
    this.coefficients = frame.progressive ? new Int16Array(luma.paddedLine * luma.paddedColumn * 64) : undefined;
    this.needed = COEFFICIENTS_FOR[scale];
    this.table = idctTable(this.size);
    this.block = new Float32Array(this.size * this.size);
    this.rows = new Float32Array(this.size * this.size);
  }

  /**
   * The block at (row, col) of the luma plane from its zigzag coefficients
   * (`coefficients[offset…]`), dequantised with `q`, written into the plane.
   */
  transform(coefficients: Int16Array, offset: number, q: Uint16Array, row: number, col: number): void {
    const n = this.size;
    const x0 = col * n;
    const y0 = row * n;
    if (x0 >= this.width || y0 >= this.height) return;
    if (n === 1) {
      this.plane[y0 * this.width + x0] = (coefficients[offset]! * q[0]!) / 8 + 128;
      return;
    }
    if (n === 8) {
      this.transformFull(coefficients, offset, q, x0, y0);
      return;
    }
    const { block, rows, table } = this;
    block.fill(0);
    for (let k = 0; k < this.needed; k++) {
      const c = coefficients[offset + k]!;
      if (c === 0) continue;
      const natural = ZIGZAG[k]!;
      const v = natural >> 3;
      const u = natural & 7;
      if (u < n && v < n) block[v * n + u] = c * q[k]!;
    }
    // Columns first: rows[y * n + u] = Σ_v idct[y, v] · block[v, u].
    for (let u = 0; u < n; u++) {
      for (let y = 0; y < n; y++) {
        let sum = 0;
        for (let v = 0; v < n; v++) sum += table[y * n + v]! * block[v * n + u]!;
        rows[y * n + u] = sum;
      }
    }
    const width = Math.min(n, this.width - x0);
    const height = Math.min(n, this.height - y0);
    for (let y = 0; y < height; y++) {
      const line = (y0 + y) * this.width + x0;
      for (let x = 0; x < width; x++) {
        let sum = 128;
        for (let u = 0; u < n; u++) sum += table[x * n + u]! * rows[y * n + u]!;
        this.plane[line + x] = sum;
      }
    }
  }

  /**
   * The full 8×8 inverse DCT, by the AAN factorisation libjpeg's float IDCT
   * uses (jidctflt.c): 5 multiplications per 8 points where the general
   * loop above makes 64. At full scale it was half of the decode's time.
   */
  private transformFull(coefficients: Int16Array, offset: number, q: Uint16Array, x0: number, y0: number): void {
    const block = this.block;
    block.fill(0);
    for (let k = 0; k < 64; k++) {
      const c = coefficients[offset + k]!;
      if (c !== 0) block[ZIGZAG[k]!] = c * q[k]! * AAN_SCALE[ZIGZAG[k]!]!;
    }
    for (let u = 0; u < 8; u++) aan(block, u, 8);
    const width = Math.min(8, this.width - x0);
    const height = Math.min(8, this.height - y0);
    for (let y = 0; y < 8; y++) aan(block, y * 8, 1);
    for (let y = 0; y < height; y++) {
      const line = (y0 + y) * this.width + x0;
      for (let x = 0; x < width; x++) this.plane[line + x] = block[y * 8 + x]! / 8 + 128;
    }
  }

  /** The plane, once a progressive file's coefficients are transformed. */
  finish(quant: (Uint16Array | undefined)[]): JpegLuma {
    const { coefficients, frame } = this;
    if (coefficients) {
      const luma = frame.components[0]!;
      const q = quant[luma.quantTable];
      if (!q) throw new JpegFormatError('no quantisation table for the luma');
      for (let row = 0; row < luma.blocksPerColumn; row++) {
        for (let col = 0; col < luma.blocksPerLine; col++) {
          this.transform(coefficients, (row * luma.paddedLine + col) * 64, q, row, col);
        }
      }
    }
    return { data: this.plane, width: this.width, height: this.height };
  }
}

interface Tables {
  dcTables: (HuffmanTable | undefined)[];
  acTables: (HuffmanTable | undefined)[];
  quant: (Uint16Array | undefined)[];
  restartInterval: number;
}

/** Decodes (or skips) the scan whose header starts at `at`; returns where the next marker is. */
function decodeScan(bytes: Uint8Array, at: number, frame: Frame, output: Output, tables: Tables): number {
  const count = bytes[at]!;
  const headerEnd = at + 1 + 2 * count + 3;
  if (count < 1 || count > 4 || headerEnd > bytes.length) throw new JpegFormatError('a malformed scan header');
  const scanComponents: Component[] = [];
  for (let i = 0; i < count; i++) {
    const id = bytes[at + 1 + 2 * i]!;
    const selectors = bytes[at + 2 + 2 * i]!;
    const component = frame.components.find((c) => c.id === id);
    if (!component) throw new JpegFormatError(`a scan of component ${id}, which the frame lacks`);
    component.dcTable = tables.dcTables[selectors >> 4];
    component.acTable = tables.acTables[selectors & 3];
    scanComponents.push(component);
  }
  const start = at + 1 + 2 * count;
  const ss = bytes[start]!;
  const se = bytes[start + 1]!;
  const ah = bytes[start + 2]! >> 4;
  const al = bytes[start + 2]! & 15;
  const luma = frame.components[0]!;
  const withLuma = scanComponents.includes(luma);
  // What a scan adds that the output never uses: chroma alone, or at 1/8 scale a progressive AC scan. (At other
  // scales an AC scan beyond the kept frequencies still counts: a later refinement scan may span both.)
  if (!withLuma || (frame.progressive && ss > 0 && output.needed === 1)) return afterScan(bytes, headerEnd);
  if (frame.progressive && (se > 63 || ss > se || (ss === 0 && se !== 0) || al > 13)) {
    throw new JpegFormatError('a progressive scan with an impossible band');
  }
  const q = tables.quant[luma.quantTable];
  if (!q) throw new JpegFormatError('no quantisation table for the luma');
  for (const c of scanComponents) {
    const needsDc = !frame.progressive || (ss === 0 && ah === 0);
    const needsAc = !frame.progressive || ss > 0;
    if ((needsDc && !c.dcTable) || (needsAc && !c.acTable)) throw new JpegFormatError('a scan names a missing table');
    c.pred = 0;
  }
  const reader = new BitReader(bytes, headerEnd);
  const decodeBlock = blockDecoder(frame, output, reader, { ss, se, ah, al });
  const coefficients = output.coefficients;
  // Baseline blocks are decoded into scratch and transformed at once.
  const scratch = new Int16Array(64);
  const restart = tables.restartInterval;
  let eobrun = { value: 0 };
  let mcu = 0;
  const visit = (c: Component, row: number, col: number) => {
    if (c !== luma) {
      decodeBlock(c, scratch, 0, eobrun, false);
    } else if (coefficients) {
      decodeBlock(c, coefficients, (row * c.paddedLine + col) * 64, eobrun, true);
    } else {
      decodeBlock(c, scratch, 0, eobrun, true);
      output.transform(scratch, 0, q, row, col);
    }
  };
  const afterMcu = () => {
    if (restart > 0 && ++mcu % restart === 0) {
      reader.restart();
      for (const c of scanComponents) c.pred = 0;
      eobrun = { value: 0 };
    }
  };
  if (count === 1) {
    // One component: its own blocks in raster order, one MCU each.
    const c = scanComponents[0]!;
    for (let row = 0; row < c.blocksPerColumn; row++) {
      for (let col = 0; col < c.blocksPerLine; col++) {
        visit(c, row, col);
        afterMcu();
      }
    }
  } else {
    for (let mcuRow = 0; mcuRow < frame.mcusPerColumn; mcuRow++) {
      for (let mcuCol = 0; mcuCol < frame.mcusPerLine; mcuCol++) {
        for (const c of scanComponents) {
          for (let j = 0; j < c.v; j++) {
            for (let i = 0; i < c.h; i++) visit(c, mcuRow * c.v + j, mcuCol * c.h + i);
          }
        }
        afterMcu();
      }
    }
  }
  return afterScan(bytes, reader.pos);
}

interface Band {
  ss: number;
  se: number;
  ah: number;
  al: number;
}

type BlockDecoder = (c: Component, out: Int16Array, offset: number, eobrun: { value: number }, keep: boolean) => void;

/**
 * The decoder of one block for the scan's kind: baseline (every coefficient;
 * those beyond what the scale uses are read and dropped, and a discarded
 * component's are not kept either), or one of progressive's four (DC first
 * and refinement, AC first and refinement, as in ITU T.81 G.1.2).
 */
function blockDecoder(frame: Frame, output: Output, reader: BitReader, band: Band): BlockDecoder {
  const { ss, se, ah, al } = band;
  if (!frame.progressive) {
    const needed = output.needed;
    return (c, out, offset, _eobrun, keep) => {
      const t = reader.decode(c.dcTable!);
      c.pred += reader.signed(t);
      const limit = keep ? needed : 1;
      out.fill(0, offset, offset + limit);
      out[offset] = c.pred;
      const ac = c.acTable!;
      for (let k = 1; k < 64; ) {
        const rs = reader.decode(ac);
        const s = rs & 15;
        const r = rs >> 4;
        if (s === 0) {
          if (r < 15) break;
          k += 16;
          continue;
        }
        k += r;
        const value = reader.signed(s);
        if (k < limit) out[offset + k] = value;
        k++;
      }
    };
  }
  if (ss === 0) {
    if (ah === 0) {
      return (c, out, offset, _eobrun, keep) => {
        const t = reader.decode(c.dcTable!);
        c.pred += reader.signed(t);
        if (keep) out[offset] = c.pred * (1 << al);
      };
    }
    return (_c, out, offset, _eobrun, keep) => {
      if (reader.bit() && keep) out[offset]! |= 1 << al;
    };
  }
  // AC scans cover one component, always the luma here: the others were skipped.
  if (ah === 0) {
    return (c, out, offset, eobrun) => {
      if (eobrun.value > 0) {
        eobrun.value--;
        return;
      }
      const ac = c.acTable!;
      for (let k = ss; k <= se; ) {
        const rs = reader.decode(ac);
        const s = rs & 15;
        const r = rs >> 4;
        if (s === 0) {
          if (r < 15) {
            eobrun.value = (1 << r) - 1 + reader.bits(r);
            break;
          }
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) break;
        out[offset + k] = reader.signed(s) * (1 << al);
        k++;
      }
    };
  }
  const p1 = 1 << al;
  const m1 = -1 << al;
  const refine = (out: Int16Array, at: number) => {
    const coefficient = out[at]!;
    if (reader.bit() && (coefficient & p1) === 0) out[at] = coefficient >= 0 ? coefficient + p1 : coefficient + m1;
  };
  return (c, out, offset, eobrun) => {
    let k = ss;
    if (eobrun.value === 0) {
      const ac = c.acTable!;
      for (; k <= se; k++) {
        const rs = reader.decode(ac);
        let r = rs >> 4;
        let s = rs & 15;
        if (s !== 0) {
          s = reader.bit() ? p1 : m1;
        } else if (r !== 15) {
          eobrun.value = (1 << r) + reader.bits(r);
          break;
        }
        while (k <= se) {
          if (out[offset + k] !== 0) refine(out, offset + k);
          else if (--r < 0) break;
          k++;
        }
        if (s !== 0 && k <= se) out[offset + k] = s;
      }
    }
    if (eobrun.value > 0) {
      for (; k <= se; k++) if (out[offset + k] !== 0) refine(out, offset + k);
      eobrun.value--;
    }
  };
}
