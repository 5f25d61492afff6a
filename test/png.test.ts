import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PNG, type ColorType } from 'pngjs';
import { decodePng, PngFormatError } from '#lib/image/png';
import { chunk, encodePng as encode, scanlinesOf, unfilteredRows, type Samples } from './support/png.ts';

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
      const decoded = decodePng(
        encode({ width: 5, height: 1, depth, colorType: 0, scanlines: unfilteredRows([samples], depth) }),
      )!;
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
      const colour = (index: number) => [
        ...palette.subarray(index * 3, index * 3 + 3),
        index < alpha.length ? alpha[index]! : 255,
      ];
      assert.deepEqual(
        indices.map((_, x) => pixel(decoded.data, 4, x, 0)),
        indices.map(colour),
        `depth ${depth}`,
      );
      assert.deepEqual(
        indices.map((_, x) => pixel(decoded.data, 4, x, 1)),
        [...indices].reverse().map(colour),
        `depth ${depth}`,
      );
    }
  });

  test('makes the tRNS colour of a greyscale or RGB image transparent', () => {
    const grey = decodePng(
      encode({
        width: 3,
        height: 1,
        depth: 8,
        colorType: 0,
        scanlines: Uint8Array.from([0, 10, 200, 10]),
        extra: [chunk('tRNS', Buffer.from([0, 10]))],
      }),
    )!;
    assert.deepEqual(
      [0, 1, 2].map((x) => pixel(grey.data, 3, x, 0)[3]),
      [0, 255, 0],
    );
    const rgb = decodePng(
      encode({
        width: 2,
        height: 1,
        depth: 8,
        colorType: 2,
        scanlines: Uint8Array.from([0, 1, 2, 3, 1, 2, 4]),
        extra: [chunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3]))],
      }),
    )!;
    assert.deepEqual(
      [pixel(rgb.data, 2, 0, 0), pixel(rgb.data, 2, 1, 0)],
      [
        [1, 2, 3, 0],
        [1, 2, 4, 255],
      ],
    );
  });

  describe('Adam7-interlaced images', () => {
    const depths: Record<number, number[]> = {
      0: [1, 2, 4, 8, 16],
      2: [8, 16],
      3: [1, 2, 4, 8],
      4: [8, 16],
      6: [8, 16],
    };
    const channels: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
    // 1×1 and 3×2 leave some of the seven passes empty; 37×23 fills every pass with ragged edges.
    const sizes = [
      [1, 1],
      [3, 2],
      [9, 9],
      [37, 23],
    ] as const;

    /** A pattern over the whole sample range, plus a palette and tRNS that every colour type may carry. */
    function image(colorType: number, depth: number, width: number, height: number) {
      const max = colorType === 3 ? Math.min(255, (1 << depth) - 1) : 2 ** depth - 1;
      const samples: Samples = {
        width,
        height,
        depth,
        channels: channels[colorType]!,
        sample: (x, y, c) => (x * 7919 + y * 104_729 + c * 31) % (max + 1),
      };
      const palette = Buffer.from(Array.from({ length: (max + 1) * 3 }, (_, i) => (i * 53) & 255));
      const key = Buffer.alloc(samples.channels * 2);
      for (let c = 0; c < samples.channels; c++) key.writeUInt16BE(samples.sample(0, 0, c), c * 2);
      const extra = colorType === 3 ? [chunk('PLTE', palette), chunk('tRNS', Buffer.from([0, 128]))] : [];
      // pngjs also blanks the colour of a pixel a grey or RGB tRNS key makes transparent, so only our own decodes compare with it.
      const keyed = colorType === 0 || colorType === 2 ? [chunk('tRNS', key)] : [];
      const file = (interlace: number, more: Buffer[] = []) =>
        encode({
          width,
          height,
          depth,
          colorType,
          interlace,
          scanlines: scanlinesOf(samples, interlace === 1),
          extra: [...extra, ...more],
        });
      return { interlaced: file(1), keyed: { interlaced: file(1, keyed), plain: file(0, keyed) }, samples };
    }

    test('decode to the pixels pngjs gives, and to those of the same image stored without interlacing, for every colour type and bit depth', () => {
      for (const [colorType, colorDepths] of Object.entries(depths).map(
        ([type, list]) => [Number(type), list] as const,
      )) {
        for (const depth of colorDepths) {
          for (const [width, height] of sizes) {
            const { interlaced, keyed } = image(colorType, depth, width, height);
            const name = `colour type ${colorType}, depth ${depth}, ${width}×${height}`;
            const decoded = decodePng(interlaced);
            assert.deepEqual([decoded.width, decoded.height], [width, height], name);
            assert.ok(decoded.data.equals(PNG.sync.read(interlaced).data), `${name}: differs from pngjs`);
            assert.ok(
              decodePng(keyed.interlaced).data.equals(decodePng(keyed.plain).data),
              `${name}: differs from the non-interlaced file`,
            );
          }
        }
      }
    });

    test('inflate no further than the seven passes need, so a few bytes declaring one pixel cannot become gigabytes', () => {
      // One 8-bit grey pixel is a single pass of one row: a filter byte and a sample.
      const bomb = encode({
        width: 1,
        height: 1,
        depth: 8,
        colorType: 0,
        interlace: 1,
        scanlines: new Uint8Array(50_000_000),
      });
      assert.throws(() => decodePng(bomb), /does not inflate to 1×1 pixels/);
      const short = encode({
        width: 9,
        height: 9,
        depth: 8,
        colorType: 0,
        interlace: 1,
        scanlines: scanlinesOf(image(0, 8, 9, 9).samples, true).subarray(1),
      });
      assert.throws(() => decodePng(short), PngFormatError);
    });
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
      'an unknown filter type': () =>
        encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2, 9, 3, 4]) }),
      'image data that is not zlib': () => {
        const header = valid2x2().subarray(0, 33);
        return Buffer.concat([header, chunk('IDAT', Buffer.from('not deflate')), chunk('IEND', Buffer.alloc(0))]);
      },
      'too little image data for the declared size': () =>
        encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2]) }),
      'more image data than the declared size (a decompression bomb)': () =>
        encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: new Uint8Array(10_000_000) }),
      'an invalid colour type and depth pair': () =>
        encode({ width: 2, height: 2, depth: 3, colorType: 2, scanlines: Uint8Array.from([0]) }),
      'a palette image without a palette': () =>
        encode({ width: 1, height: 1, depth: 8, colorType: 3, scanlines: Uint8Array.from([0, 0]) }),
      'a palette index past the palette': () =>
        encode({
          width: 1,
          height: 1,
          depth: 8,
          colorType: 3,
          scanlines: Uint8Array.from([0, 5]),
          extra: [chunk('PLTE', Buffer.from([1, 2, 3]))],
        }),
    };
    for (const [name, make] of Object.entries(cases)) {
      test(name, () => assert.throws(() => decodePng(make()), PngFormatError));
    }
  });

  test('never names a chunk in an error with bytes that are not a chunk name', () => {
    const bytes = Buffer.concat([valid2x2().subarray(0, 33), chunk('\u0000<>\u001b', Buffer.from([1]))]);
    bytes[bytes.length - 1]! ^= 1;
    assert.throws(
      () => decodePng(bytes),
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is that no control character reaches the message
      (error: Error) => error instanceof PngFormatError && !/[<>\u0000\u001b]/.test(error.message),
    );
  });
});

function valid2x2(): Buffer {
  return encode({ width: 2, height: 2, depth: 8, colorType: 0, scanlines: Uint8Array.from([0, 1, 2, 0, 3, 4]) });
}
