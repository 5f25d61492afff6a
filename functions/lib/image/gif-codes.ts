/**
 * jimp decodes GIFs with omggif, whose LZW decoder trusts the code stream: a
 * code beyond the next free table entry (or, right after a clear code, equal
 * to it) makes a table entry its own prefix, and the decoder's prefix chase
 * then never ends. A GIF with a few flipped bits would hang the process, so
 * the first frame's codes — the frame that is decoded — are checked first.
 * Valid encoders never emit such a code; rejecting it is the rule of the
 * original LZW decoders (a code may be at most the next free one).
 */
import { CorruptImageError } from './header.ts';

const corrupt = (message: string) => new CorruptImageError(`gif: ${message}`);
const MAX_CODES = 4096;

/** Throws CorruptImageError unless every LZW code of the first frame names a table entry defined by then. */
export function checkGifCodes(bytes: Uint8Array): void {
  checkCodes(bytes, firstFrameData(bytes));
}

function byteAt(bytes: Uint8Array, offset: number): number {
  if (offset >= bytes.length) throw corrupt('truncated before the first frame');
  return bytes[offset]!;
}

/** Offset of the first frame's LZW minimum code size, walking the blocks as omggif does. */
function firstFrameData(bytes: Uint8Array): number {
  const palette = (packed: number) => (packed & 0x80 ? 3 * (2 << (packed & 0x07)) : 0);
  let offset = 13 + palette(byteAt(bytes, 10));
  for (;;) {
    const block = byteAt(bytes, offset);
    if (block === 0x2c) return offset + 10 + palette(byteAt(bytes, offset + 9));
    if (block !== 0x21) throw corrupt(`unexpected block 0x${block.toString(16)}`);
    // omggif reads an application extension of any other size as NETSCAPE2.0, and would look for the frame elsewhere.
    if (byteAt(bytes, offset + 1) === 0xff && byteAt(bytes, offset + 2) !== 11)
      throw corrupt('application extension is not 11 bytes');
    offset += 2;
    for (let size = byteAt(bytes, offset); size !== 0; size = byteAt(bytes, offset)) offset += size + 1;
    offset += 1;
  }
}

/**
 * Reads the codes exactly as omggif does — bits least significant first,
 * across sub-blocks, code size growing with the table — without producing
 * pixels. Past the end of the file omggif reads zero bits, which can only
 * form literal codes, so the scan stops there.
 */
function checkCodes(bytes: Uint8Array, start: number): void {
  const minCodeSize = byteAt(bytes, start);
  if (minCodeSize < 2 || minCodeSize > 8) throw corrupt(`LZW minimum code size ${minCodeSize} is not 2–8`);
  const clear = 1 << minCodeSize;
  const end = clear + 1;
  let next = end + 1;
  let size = minCodeSize + 1;
  let mask = (1 << size) - 1;
  let offset = start + 1;
  let subBlock = bytes[offset++] ?? 0;
  let bits = 0;
  let count = 0;
  let previous: number | undefined;
  let exhausted = false;
  for (;;) {
    while (count < 16 && subBlock !== 0 && !exhausted) {
      if (offset >= bytes.length) {
        exhausted = true;
        break;
      }
      bits |= bytes[offset++]! << count;
      count += 8;
      if (subBlock > 1) subBlock--;
      else if (offset < bytes.length) subBlock = bytes[offset++]!;
      else exhausted = true;
    }
    if (count < size) {
      // The last, partly read code is completed with the zero bits omggif reads past the end.
      if (!exhausted || count === 0) return;
      count = size;
    }
    const code = bits & mask;
    bits >>= size;
    count -= size;
    if (code === clear) {
      next = end + 1;
      size = minCodeSize + 1;
      mask = (1 << size) - 1;
      previous = undefined;
      continue;
    }
    if (code === end) return;
    if (code > next || (code === next && previous === undefined)) {
      throw corrupt(`LZW code ${code} refers to a table entry not yet defined (next is ${next})`);
    }
    if (previous !== undefined && next < MAX_CODES) {
      next++;
      if (next >= mask + 1 && size < 12) {
        size++;
        mask = (mask << 1) | 1;
      }
    }
    previous = code;
    if (exhausted && count === 0) return;
  }
}
