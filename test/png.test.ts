import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import { describe, test } from 'node:test';
import { PNG, type ColorType } from 'pngjs';
import { decodePng, PngFormatError } from '#lib/png';

function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

interface Options {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlace?: number;
  /** Scanlines with their filter bytes, before compression. */
  scanlines: Uint8Array;
  extra?: Buffer[];
}

/** A PNG written byte by byte, for the colour types and depths pngjs cannot write. */
function encode({ width, height, depth, colorType, interlace = 0, scanlines, extra = [] }: Options): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([depth, colorType, 0, 0, interlace], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    ...extra,
    chunk('IDAT', deflateSync(scanlines)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Rows of packed samples, each behind filter byte 0. */
function unfilteredRows(rows: number[][], depth: number): Uint8Array {
  return Buffer.concat(
    rows.map((samples) => {
      const bytes = Buffer.alloc(Math.ceil((samples.length * depth) / 8) + 1);
      samples.forEach((value, i) => {
        const bit = i * depth;
        bytes[1 + (bit >> 3)]! |= value << (8 - depth - (bit & 7));
      });
      return bytes;
    }),
  );
}

function pixel(data: Uint8Array, width: number, x: number, y: number): number[] {
  return [...data.subarray((y * width + x) * 4, (y * width + x) * 4 + 4)];
}

/** A deterministic pattern with every byte value and sharp edges, so each filter type gets used. */
function pattern(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 3) * 11 + (i % 7 === 0 ? 128 : 0)) & 255;
  return data;
}

describe('decodePng', () => {
  test('gives the same RGBA pixels as pngjs (jimp’s decoder) for every colour type, bit depth and filter pngjs writes', () => {
    const width = 37;
    const height = 23;
    const colorTypes: ColorType[] = [0, 2, 4, 6];
    for (const colorType of colorTypes) {
      for (const bitDepth of [8, 16] as const) {
        for (const filterType of [0, 1, 2, 3, 4, -1]) {
          const source = new PNG({ width, height });
          pattern(width, height).copy(source.data);
          const bytes = PNG.sync.write(source, { colorType, bitDepth, filterType, inputColorType: 6 });
          const expected = PNG.sync.read(bytes).data;
          const decoded = decodePng(bytes);
          assert.ok(decoded, `colour type ${colorType}, depth ${bitDepth}, filter ${filterType}`);
          assert.deepEqual([decoded.width, decoded.height], [width, height]);
          assert.ok(decoded.data.equals(expected), `colour type ${colorType}, depth ${bitDepth}, filter ${filterType}`);
        }
      }
    }
  });

  test('reads 1-, 2- and 4-bit greyscale, scaling samples to 0–255', () => {
    for (const depth of [1, 2, 4]) {
      const max = (1 << depth) - 1;
      const samples = [0, max, 1, max - 1, 0];
      const decoded = decodePng(encode({ width: 5, height: 1, depth, colorType: 0, scanlines: unfilteredRows([samples], depth) }))!;
      assert.deepEqual(
        samples.map((_, x) => pixel(decoded.data, 5, x, 0)),
        samples.map((v) => {
          const grey = Math.round((v * 255) / max);
          return [grey, grey, grey, 255];
        }),
        `depth ${depth}`,
      );
    }
  });

  test('reads palette images at every depth, with per-entry transparency from tRNS', () => {
    const palette = Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const alpha = Buffer.from([255, 128]);
    for (const depth of [1, 2, 4, 8]) {
      const indices = depth === 1 ? [0, 1, 1, 0] : [0, 1, 2, 1];
      const bytes = encode({
        width: 4,
        height: 2,
        depth,
        colorType: 3,
        scanlines: unfilteredRows([indices, [...indices].reverse()], depth),
        extra: [chunk('PLTE', palette), chunk('tRNS', alpha)],
      });
      const decoded = decodePng(bytes)!;
      const colour = (index: number) => [...palette.subarray(index * 3, index * 3 + 3), index < alpha.length ? alpha[index]! : 255];
      assert.deepEqual(indices.map((_, x) => pixel(decoded.data, 4, x, 0)), indices.map(colour), `depth ${depth}`);
      assert.deepEqual(indices.map((_, x) => pixel(decoded.data, 4, x, 1)), [...indices].reverse().map(colour), `depth ${depth}`);
    }
  });

  test('makes the tRNS colour of a greyscale or RGB image transparent', () => {
    const grey = decodePng(
      encode({ width: 3, height: 1, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 10, 200, 10]), extra: [chunk('tRNS', Buffer.from([0, 10]))] }),
    )!;
    assert.deepEqual([0, 1, 2].map((x) => pixel(grey.data, 3, x, 0)[3]), [0, 255, 0]);
    const rgb = decodePng(
      encode({ width: 2, height: 1, depth: 8, colorType: 2, scanlines: Uint8Array.from([0, 1, 2, 3, 1, 2, 4]), extra: [chunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3]))] }),
    )!;
    assert.deepEqual([pixel(rgb.data, 2, 0, 0), pixel(rgb.data, 2, 1, 0)], [[1, 2, 3, 0], [1, 2, 4, 255]]);
  });

  test('leaves interlaced images to another decoder', () => {
    assert.equal(decodePng(encode({ width: 1, height: 1, depth: 8, colorType: 0, interlace: 1, scanlines: Uint8Array.from([0, 7]) })), undefined);
  });

  describe('rejects a malformed file with a PngFormatError', () => {
    const cases: Record<string, () => Buffer> = {
      'a flipped bit (CRC mismatch)': () => {
        const bytes = valid2x2();
        bytes[bytes.indexOf('IDAT') + 6]! ^= 1;
        return bytes;
      },
      'a file cut short': () => valid2x2().subarray(0, 40),
      'no IEND': () => valid2x2().subarray(0, -12),
      'no IDAT': () => Buffer.concat([valid2x2().subarray(0, 33), chunk('IEND', Buffer.alloc(0))]),
      'an unknown filter type': () => encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2, 9, 3, 4]) }),
      'image data that is not zlib': () => {
        const header = valid2x2().subarray(0, 33);
        return Buffer.concat([header, chunk('IDAT', Buffer.from('not deflate')), chunk('IEND', Buffer.alloc(0))]);
      },
      'too little image data for the declared size': () => encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2]) }),
      'more image data than the declared size (a decompression bomb)': () =>
        encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: new Uint8Array(10_000_000) }),
      'an invalid colour type and depth pair': () => encode({ width: 2, height: 2, depth: 3, colorType: 2, scanlines: Uint8Array.from([0]) }),
      'a palette image without a palette': () => encode({ width: 1, height: 1, depth: 8, colorType: 3, scanlines: Uint8Array.from([0, 0]) }),
      'a palette index past the palette': () =>
        encode({ width: 1, height: 1, depth: 8, colorType: 3, scanlines: Uint8Array.from([0, 5]), extra: [chunk('PLTE', Buffer.from([1, 2, 3]))] }),
    };
    for (const [name, make] of Object.entries(cases)) {
      test(name, () => assert.throws(() => decodePng(make()), PngFormatError));
    }
  });

  test('never names a chunk in an error with bytes that are not a chunk name', () => {
    const bytes = Buffer.concat([valid2x2().subarray(0, 33), chunk('\u0000<>\u001b', Buffer.from([1]))]);
    bytes[bytes.length - 1]! ^= 1;
    assert.throws(() => decodePng(bytes), (error: Error) => error instanceof PngFormatError && !/[<>\u0000\u001b]/.test(error.message));
  });
});

function valid2x2(): Buffer {
  return encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2, 0, 3, 4]) });
}
