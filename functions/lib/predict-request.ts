/**
 * What a caller may send to POST /predict, parsed and bounded before any heavy
 * work: sizes are checked on the encoded text before base64 decoding, image
 * headers before pixel decoding (in image/decode.ts).
 *
 *   {"image": "<base64 or data: URL>"}         one image
 *   {"images": ["...", ...]}                   up to MAX_BATCH images
 *   {"pixels": [784 numbers 0–255]}            MNIST-style input as is
 *   raw image bytes with Content-Type image/* or application/octet-stream
 *   (API Gateway base64-encodes them)
 *
 * `"includeInput": true` adds the 28×28 input the model saw to each answer.
 * `"mode": "number"` (or `?mode=number`, the only way with a raw body) reads
 * one image as a number written left to right instead of as one digit.
 */
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
import { base64Bytes, checkBody, fieldError, readJsonObject, type JsonBodyRules } from './http.ts';
import { checkImage, MAX_IMAGE_BYTES, MAX_IMAGE_SIDE } from './image/decode.ts';

export const MAX_BATCH = 32;
/**
 * Decoding dominates the cost of an image, and a batch decodes every image
 * before any is scaled down: 32 maximal images would hold 2 GB of pixels and
 * outlast the function's timeout. A batch may declare as many pixels as one
 * maximal image, counted from the headers before anything is decoded.
 */
export const MAX_BATCH_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE;
/** Lambda refuses a synchronous invocation whose event JSON is larger than this. */
export const LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024;
/**
 * API Gateway base64-encodes a binary body into the event (4 bytes per 3), and
 * an event over LAMBDA_PAYLOAD_BYTES never reaches the handler: the caller gets
 * the gateway's own error instead of this service's JSON. 4 MiB encodes to
 * 5.33 MiB, leaving 0.67 MiB for headers and the request context, so any body
 * up to this size, JSON or binary, gets an answer from the handler.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export type PredictInput = { kind: 'image'; bytes: Buffer } | { kind: 'pixels'; pixels: unknown };

export const PREDICT_MODES = ['digit', 'number'] as const;
export type PredictMode = (typeof PREDICT_MODES)[number];

/** One digit per input (an image, a batch of them, or pixels). */
export interface DigitRequest {
  mode: 'digit';
  inputs: PredictInput[];
  batch: boolean;
  includeInput: boolean;
}

/** One image read as a number. */
export interface NumberRequest {
  mode: 'number';
  bytes: Buffer;
  includeInput: boolean;
}

export type PredictRequest = DigitRequest | NumberRequest;

export interface RawRequest {
  body: string | undefined;
  isBase64Encoded: boolean;
  contentType: string | undefined;
  /** The query string's `mode`, if any. */
  mode?: string | undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,/;
/** `curl -d` sends form-urlencoded by default; its body is still the JSON the caller typed. */
const JSON_TYPES = new Set(['application/json', 'text/plain', 'application/x-www-form-urlencoded']);
const JSON_BODY: JsonBodyRules = {
  maxBytes: MAX_BODY_BYTES,
  fields: ['image', 'images', 'pixels', 'includeInput', 'mode'],
  example: '{"image": "<base64>"}',
};

/** A base64 string or data: URL → bytes, refusing oversize input before decoding it. */
export function decodeImageString(value: unknown, where: string): Buffer {
  if (typeof value !== 'string')
    throw new BadRequestError(`${where} must be a base64 string or a data: URL`, 'invalid_image');
  let text = value;
  const dataUrl = DATA_URL.exec(text);
  if (dataUrl) text = text.slice(dataUrl[0].length);
  else if (text.startsWith('data:'))
    throw new BadRequestError(`${where} is a data: URL without ;base64`, 'invalid_base64');
  if (text.length > Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 1024) {
    throw new PayloadTooLargeError(`${where} is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
  }
  text = text.replace(/\s+/g, '');
  if (text.length === 0) throw new BadRequestError(`${where} is empty`, 'invalid_image');
  if (text.length % 4 === 1 || !BASE64.test(text))
    throw new BadRequestError(`${where} is not valid base64`, 'invalid_base64');
  if (base64Bytes(text) > MAX_IMAGE_BYTES)
    throw new PayloadTooLargeError(`${where} is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
  return Buffer.from(text, 'base64');
}

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** The mode named in the query and in the body, which must agree; `digit` when neither names one. */
function modeOf(query: string | undefined, body: unknown): PredictMode {
  const known = (value: unknown, where: string): PredictMode | undefined => {
    if (value === undefined) return undefined;
    if (!(PREDICT_MODES as readonly unknown[]).includes(value))
      throw new BadRequestError(
        `${where} must be ${PREDICT_MODES.map((m) => `"${m}"`).join(' or ')}; got ${JSON.stringify(value)?.slice(0, 40)}`,
        'invalid_mode',
      );
    return value as PredictMode;
  };
  const fromQuery = known(query, '?mode');
  const fromBody = known(body, '"mode"');
  if (fromQuery && fromBody && fromQuery !== fromBody)
    throw new BadRequestError(`?mode=${fromQuery} and "mode": "${fromBody}" disagree`, 'invalid_mode');
  return fromBody ?? fromQuery ?? 'digit';
}

export function parsePredictRequest(raw: RawRequest): PredictRequest {
  checkBody(raw, JSON_BODY);
  const type = mediaType(raw.contentType);
  if (type?.startsWith('image/') || type === 'application/octet-stream') {
    const mode = modeOf(raw.mode, undefined);
    const bytes = raw.isBase64Encoded ? decodeImageString(raw.body, 'the body') : Buffer.from(raw.body, 'latin1');
    if (bytes.length > MAX_IMAGE_BYTES)
      throw new PayloadTooLargeError(`the image is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
    if (mode === 'number') return { mode, bytes, includeInput: false };
    return { mode, inputs: [{ kind: 'image', bytes }], batch: false, includeInput: false };
  }
  if (type !== undefined && !JSON_TYPES.has(type)) {
    throw new UnsupportedMediaTypeError(
      `Content-Type ${type} is not accepted: send application/json or an image/* body`,
    );
  }
  return parsePredictJson(readJsonObject(raw, JSON_BODY), raw.mode);
}

function parsePredictJson(body: Record<string, unknown>, queryMode: string | undefined): PredictRequest {
  const mode = modeOf(queryMode, body.mode);
  const given = ['image', 'images', 'pixels'].filter((key) => body[key] !== undefined);
  if (given.length !== 1) {
    const message = 'send exactly one of "image", "images" or "pixels"';
    throw new BadRequestError(message, given.length === 0 ? 'missing_field' : 'invalid_request');
  }
  if (body.includeInput !== undefined && typeof body.includeInput !== 'boolean') {
    throw fieldError('includeInput', 'true or false', body.includeInput);
  }
  const includeInput = body.includeInput === true;
  if (mode === 'number') {
    // A number is read from an image's layout: pixels are one digit already scaled, a batch is many requests.
    if (body.image === undefined)
      throw new BadRequestError(
        'number mode reads one "image"; "images" and "pixels" are digit mode only',
        'invalid_request',
      );
    return { mode, bytes: decodeImageString(body.image, '"image"'), includeInput };
  }
  if (body.pixels !== undefined)
    return { mode, inputs: [{ kind: 'pixels', pixels: body.pixels }], batch: false, includeInput };
  if (body.image !== undefined) {
    return {
      mode,
      inputs: [{ kind: 'image', bytes: decodeImageString(body.image, '"image"') }],
      batch: false,
      includeInput,
    };
  }
  const images = body.images;
  if (!Array.isArray(images) || images.length === 0)
    throw fieldError('images', 'a non-empty array of base64 strings', images);
  if (images.length > MAX_BATCH) {
    throw new PayloadTooLargeError(
      `"images" holds ${images.length} images; the limit is ${MAX_BATCH} per request`,
      'batch_too_large',
    );
  }
  const decoded = images.map((image, i) => decodeImageString(image, `"images"[${i}]`));
  const pixels = decoded.reduce((sum, bytes) => {
    const { width, height } = checkImage(bytes);
    return sum + width * height;
  }, 0);
  if (pixels > MAX_BATCH_PIXELS) {
    throw new PayloadTooLargeError(
      `the images in this batch hold ${pixels} pixels together; the limit is ${MAX_BATCH_PIXELS} (one ${MAX_IMAGE_SIDE}×${MAX_IMAGE_SIDE} image) per request`,
      'batch_too_large',
    );
  }
  return { mode, inputs: decoded.map((bytes) => ({ kind: 'image' as const, bytes })), batch: true, includeInput };
}
