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
 */
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from './errors.ts';
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

export interface PredictRequest {
  inputs: PredictInput[];
  batch: boolean;
  includeInput: boolean;
}

export interface RawRequest {
  body: string | undefined;
  isBase64Encoded: boolean;
  contentType: string | undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,/;
/** `curl -d` sends form-urlencoded by default; its body is still the JSON the caller typed. */
const JSON_TYPES = new Set(['application/json', 'text/plain', 'application/x-www-form-urlencoded']);
const ALLOWED_FIELDS = new Set(['image', 'images', 'pixels', 'includeInput']);

function decodedLength(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}

/** A base64 string or data: URL → bytes, refusing oversize input before decoding it. */
export function decodeImageString(value: unknown, where: string): Buffer {
  if (typeof value !== 'string') throw new BadRequestError(`${where} must be a base64 string or a data: URL`, 'invalid_image');
  let text = value;
  const dataUrl = DATA_URL.exec(text);
  if (dataUrl) text = text.slice(dataUrl[0].length);
  else if (text.startsWith('data:')) throw new BadRequestError(`${where} is a data: URL without ;base64`, 'invalid_base64');
  if (text.length > Math.ceil((MAX_IMAGE_BYTES * 4) / 3) + 1024) {
    throw new PayloadTooLargeError(`${where} is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
  }
  text = text.replace(/\s+/g, '');
  if (text.length === 0) throw new BadRequestError(`${where} is empty`, 'invalid_image');
  if (text.length % 4 === 1 || !BASE64.test(text)) throw new BadRequestError(`${where} is not valid base64`, 'invalid_base64');
  if (decodedLength(text) > MAX_IMAGE_BYTES) throw new PayloadTooLargeError(`${where} is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
  return Buffer.from(text, 'base64');
}

function mediaType(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
}

function bodyBytes(raw: RawRequest): number {
  if (raw.body === undefined) return 0;
  return raw.isBase64Encoded ? decodedLength(raw.body) : Buffer.byteLength(raw.body);
}

export function parsePredictRequest(raw: RawRequest): PredictRequest {
  if (!raw.body) throw new BadRequestError('the request body is empty: send {"image": "<base64>"}', 'empty_body');
  if (bodyBytes(raw) > MAX_BODY_BYTES) throw new PayloadTooLargeError(`the request body is over ${MAX_BODY_BYTES} bytes`, 'body_too_large');
  const type = mediaType(raw.contentType);
  if (type?.startsWith('image/') || type === 'application/octet-stream') {
    const bytes = raw.isBase64Encoded ? decodeImageString(raw.body, 'the body') : Buffer.from(raw.body, 'latin1');
    if (bytes.length > MAX_IMAGE_BYTES) throw new PayloadTooLargeError(`the image is over ${MAX_IMAGE_BYTES} bytes`, 'image_too_large');
    return { inputs: [{ kind: 'image', bytes }], batch: false, includeInput: false };
  }
  if (type !== undefined && !JSON_TYPES.has(type)) {
    throw new UnsupportedMediaTypeError(`Content-Type ${type} is not accepted: send application/json or an image/* body`);
  }
  const text = raw.isBase64Encoded ? Buffer.from(raw.body, 'base64').toString('utf8') : raw.body;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new BadRequestError('the body is not valid JSON', 'invalid_json');
  }
  return parsePredictJson(json);
}

export function parsePredictJson(json: unknown): PredictRequest {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new BadRequestError('the body must be a JSON object such as {"image": "<base64>"}', 'invalid_request');
  }
  const body = json as Record<string, unknown>;
  const unknown = Object.keys(body).filter((key) => !ALLOWED_FIELDS.has(key));
  if (unknown.length > 0) {
    // Names are cut short: a caller's field name is not worth a megabyte of error message.
    const names = unknown.slice(0, 5).map((key) => (key.length > 32 ? `${key.slice(0, 32)}…` : key));
    throw new BadRequestError(`unknown field(s): ${names.join(', ')}`, 'invalid_request');
  }
  const given = ['image', 'images', 'pixels'].filter((key) => body[key] !== undefined);
  if (given.length !== 1) {
    throw new BadRequestError('send exactly one of "image", "images" or "pixels"', 'invalid_request');
  }
  if (body.includeInput !== undefined && typeof body.includeInput !== 'boolean') {
    throw new BadRequestError('"includeInput" must be true or false', 'invalid_request');
  }
  const includeInput = body.includeInput === true;
  if (body.pixels !== undefined) return { inputs: [{ kind: 'pixels', pixels: body.pixels }], batch: false, includeInput };
  if (body.image !== undefined) {
    return { inputs: [{ kind: 'image', bytes: decodeImageString(body.image, '"image"') }], batch: false, includeInput };
  }
  const images = body.images;
  if (!Array.isArray(images)) throw new BadRequestError('"images" must be an array of base64 strings', 'invalid_request');
  if (images.length === 0) throw new BadRequestError('"images" is empty', 'invalid_request');
  if (images.length > MAX_BATCH) {
    throw new PayloadTooLargeError(`"images" holds ${images.length} images; the limit is ${MAX_BATCH} per request`, 'batch_too_large');
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
  return { inputs: decoded.map((bytes) => ({ kind: 'image' as const, bytes })), batch: true, includeInput };
}
