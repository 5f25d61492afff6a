/**
 * Who may talk to the embedded S3: a request signed (AWS SigV4, Authorization
 * header) with the local credentials, from a program rather than a browser.
 * Pure functions over the request line and headers, so the refusal happens
 * before anything reads the body.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { S3Credentials } from '../config.ts';

export interface RequestHead {
  method: string;
  /** The raw request target, path and query exactly as sent (what the client signed). */
  url: string;
  headers: IncomingHttpHeaders;
}

/** An S3 error code and message (every refusal of this guard is a 403). */
export interface Refusal {
  code: string;
  message: string;
}

// What S3 itself allows between the signing time and its arrival.
const MAX_SKEW_MS = 15 * 60_000;
const ALGORITHM = 'AWS4-HMAC-SHA256';
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{8})T\d{6}Z$/;
const AMZ_DATE_PARTS = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
// The content types an HTML form (or a no-cors fetch) can send without a CORS preflight.
const FORM_TYPES = ['multipart/form-data', 'application/x-www-form-urlencoded', 'text/plain'];

/** Why a request comes from a web page, or undefined when nothing says it does. */
export function browserRefusal(head: RequestHead): Refusal | undefined {
  const browserHeaders = ['origin', 'sec-fetch-site', 'sec-fetch-mode', 'sec-fetch-dest'].filter(
    (name) => name in head.headers,
  );
  if (browserHeaders.length > 0) {
    return {
      code: 'AccessDenied',
      message: `the embedded S3 refuses requests from web pages (${browserHeaders.join(', ')})`,
    };
  }
  const type = head.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (head.method === 'POST' && type && FORM_TYPES.includes(type)) {
    return { code: 'AccessDenied', message: `the embedded S3 refuses form posts (${type})` };
  }
  return undefined;
}

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

// RFC 3986 unreserved characters stay; everything else is percent-encoded, as SigV4 wants.
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(query: string): string {
  return query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      const [name, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))] as const;
    })
    .sort(([a, x], [b, y]) => (a !== b ? (a < b ? -1 : 1) : x < y ? -1 : x > y ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return (Array.isArray(value) ? value.join(',') : value).trim().replace(/\s+/g, ' ');
}

/**
 * Recomputes the request's SigV4 signature with `credentials` and compares.
 * The payload is taken as the client declared it (x-amz-content-sha256): the
 * signature proves who sent the request, which is what the guard is for.
 */
export function signatureRefusal(head: RequestHead, credentials: S3Credentials, now = Date.now()): Refusal | undefined {
  const [path = '/', query = ''] = splitTarget(head.url);
  if (/[?&]X-Amz-(Algorithm|Signature)=/i.test(`?${query}`)) {
    return {
      code: 'AccessDenied',
      message: 'the embedded S3 does not accept presigned URLs; sign the Authorization header',
    };
  }
  const authorization = head.headers.authorization;
  if (!authorization) {
    const message = 'the embedded S3 needs requests signed with its local credentials (credentials.json in its folder)';
    return { code: 'AccessDenied', message };
  }
  const parsed = AUTHORIZATION.exec(authorization);
  if (!parsed)
    return { code: 'AccessDenied', message: `the embedded S3 accepts only ${ALGORITHM} Authorization headers` };
  const [, credential, signedHeaders, signature] = parsed as unknown as [string, string, string, string];
  const [accessKeyId, day, region, service, terminator, ...extra] = credential.split('/');
  if (accessKeyId !== credentials.accessKeyId) {
    return { code: 'InvalidAccessKeyId', message: 'the access key is not the embedded S3’s local one' };
  }
  const amzDate = headerValue(head.headers, 'x-amz-date') ?? '';
  const dateMatch = AMZ_DATE.exec(amzDate);
  if (
    !dateMatch ||
    dateMatch[1] !== day ||
    !region ||
    service !== 's3' ||
    terminator !== 'aws4_request' ||
    extra.length > 0
  ) {
    return { code: 'AccessDenied', message: 'the credential scope or x-amz-date is malformed' };
  }
  const signedAt = Date.parse(amzDate.replace(AMZ_DATE_PARTS, '$1-$2-$3T$4:$5:$6Z'));
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    return { code: 'RequestTimeTooSkewed', message: 'the request was signed more than 15 minutes from now' };
  }
  const names = signedHeaders.split(';');
  if (!names.includes('host')) return { code: 'AccessDenied', message: 'the signature must cover the host header' };
  const payloadHash = headerValue(head.headers, 'x-amz-content-sha256');
  if (!payloadHash) return { code: 'AccessDenied', message: 'x-amz-content-sha256 is missing' };
  const canonicalHeaders: string[] = [];
  for (const name of names) {
    const value = headerValue(head.headers, name);
    if (value === undefined) return { code: 'AccessDenied', message: `the signed header ${name} is missing` };
    canonicalHeaders.push(`${name}:${value}\n`);
  }
  let sortedQuery: string;
  try {
    sortedQuery = canonicalQuery(query);
  } catch {
    return { code: 'AccessDenied', message: 'the query string is not valid percent-encoding' };
  }
  const canonicalRequest = [head.method, path, sortedQuery, canonicalHeaders.join(''), signedHeaders, payloadHash].join(
    '\n',
  );
  const scope = `${day}/${region}/${service}/${terminator}`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), service), terminator);
  const expected = hmac(key, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    return {
      code: 'SignatureDoesNotMatch',
      message: 'the signature does not match the embedded S3’s local credentials',
    };
  }
  return undefined;
}

function splitTarget(url: string): [string, string] {
  const at = url.indexOf('?');
  return at < 0 ? [url, ''] : [url.slice(0, at), url.slice(at + 1)];
}

/** An S3-style XML error body. */
export function errorXml(refusal: Refusal): string {
  const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
  const error = `<Error><Code>${refusal.code}</Code><Message>${escapeXml(refusal.message)}</Message></Error>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n${error}`;
}
