/**
 * The predict path's reads from S3 without the AWS SDK: a GET signed with
 * SigV4 (`signS3Get`) over node:http(s). Loading the SDK and its first
 * request were most of a cold start; the predict function only ever reads
 * objects. `S3Get` keeps what `S3ObjectStore` does on that path: the same
 * connect, response and idle timeouts (TimeoutError), the same three attempts
 * on network errors, timeouts, throttling and 5xx, size caps checked on the
 * announced length and again while reading (ObjectTooLargeError), a missing
 * key as undefined and a matching ETag as 'unchanged', and any other answer
 * as an error named by S3's code with `$metadata.httpStatusCode`, as the
 * SDK's are. `servingObjects` gives the predict handler its ObjectStore:
 * reads through `S3Get`, writes (the local stack's captures) and reads
 * without credentials in the environment through the SDK, loaded on first use.
 */
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Config } from '../config.ts';
import { ObjectTooLargeError } from '../errors.ts';
import type { ObjectStore, ReadOptions, StoredObject } from './objects.ts';
import { S3_TIMEOUT_DEFAULTS, type S3Timeouts } from './s3-timeouts.ts';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** A role's temporary credentials (Lambda's) come with one; it is sent and signed as x-amz-security-token. */
  sessionToken?: string;
}

export interface S3GetSettings {
  bucket: string;
  region: string;
  /** An S3-compatible server (the embedded S3), addressed path-style; unset on AWS. */
  endpoint?: string;
  credentials: AwsCredentials;
  timeouts?: S3Timeouts;
}

/** An error answer from S3, named and numbered as the SDK names them (`NoSuchBucket`, `AccessDenied`, 403…). */
export class S3ResponseError extends Error {
  readonly $metadata: { httpStatusCode: number };

  constructor(code: string, message: string, status: number) {
    super(message);
    this.name = code;
    this.$metadata = { httpStatusCode: status };
  }
}

/** As the SDK's standard retry strategy: three attempts in all. */
const MAX_ATTEMPTS = 3;
const RETRY_BASE_MS = 100;
const RETRIED_STATUSES = [429, 500, 502, 503, 504];
/** How much of an error answer is read for its code and message. */
const ERROR_BODY_MAX_BYTES = 64 * 1024;
const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
/** SHA-256 of the empty body a GET sends. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/** RFC 3986 unreserved characters stay; everything else is percent-encoded, as SigV4 wants. */
const uriEncode = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The headers that sign a GET of `url` (no query) with SigV4 for S3 at `now`:
 * every header given, plus host, x-amz-date, x-amz-content-sha256 and the
 * session token, all signed.
 */
export function signS3Get(
  url: URL,
  headers: Record<string, string>,
  credentials: AwsCredentials,
  region: string,
  now = new Date(),
): Record<string, string> {
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const day = amzDate.slice(0, 8);
  const signed: Record<string, string> = {
    ...Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value.trim()])),
    host: url.host,
    'x-amz-content-sha256': EMPTY_SHA256,
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  };
  const names = Object.keys(signed).sort();
  const signedHeaders = names.join(';');
  const canonicalHeaders = names.map((name) => `${name}:${signed[name]!.replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = ['GET', url.pathname, '', canonicalHeaders, signedHeaders, EMPTY_SHA256].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = hmac(key, stringToSign).toString('hex');
  return {
    ...signed,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

/** Reads a body, failing before reading when its announced length is over `maxBytes`, and as soon as it passes it. */
export async function readCapped(
  body: AsyncIterable<Uint8Array> & { destroy(): void },
  key: string,
  maxBytes: number,
  announced?: number,
): Promise<Buffer> {
  if ((announced ?? 0) > maxBytes) {
    body.destroy();
    throw new ObjectTooLargeError(key, maxBytes, announced);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > maxBytes) {
      body.destroy();
      throw new ObjectTooLargeError(key, maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

const timeoutError = (message: string) => Object.assign(new Error(message), { name: 'TimeoutError' });

/** Node's codes for a connection that failed or broke: the ones the SDK retries. */
const TRANSIENT_CODES = [
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
];

const isTransient = (error: unknown) =>
  error instanceof S3ResponseError
    ? RETRIED_STATUSES.includes(error.$metadata.httpStatusCode)
    : (error as Error).name === 'TimeoutError' || TRANSIENT_CODES.includes((error as NodeJS.ErrnoException).code ?? '');

/** The request's response once its headers arrive, under the connect, response and idle timeouts. */
function send(url: URL, headers: Record<string, string>, timeouts: S3Timeouts): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: 'GET', headers });
    let response: http.IncomingMessage | undefined;
    const fail = (error: Error) => {
      clearTimeout(connecting);
      clearTimeout(answering);
      if (response) response.destroy(error);
      request.destroy(error);
    };
    const connecting = setTimeout(
      () => fail(timeoutError(`no connection to ${url.host} within ${timeouts.connectMs} ms`)),
      timeouts.connectMs,
    );
    const answering = setTimeout(
      () => fail(timeoutError(`no answer from ${url.host} within ${timeouts.requestMs} ms`)),
      timeouts.requestMs,
    );
    request.on('socket', (socket) => {
      if (socket.connecting) socket.once('connect', () => clearTimeout(connecting));
      else clearTimeout(connecting);
      // Silence on the socket, while waiting for the answer or reading its body, ends the request.
      const onIdle = () => fail(timeoutError(`${url.host} was silent for ${timeouts.requestMs} ms`));
      socket.setTimeout(timeouts.requestMs, onIdle);
      // A kept-alive socket goes back to the agent, which sets its own idle timeout.
      request.once('close', () => socket.removeListener('timeout', onIdle));
    });
    request.on('response', (answer) => {
      response = answer;
      clearTimeout(answering);
      resolve(answer);
    });
    request.on('error', (error) => {
      clearTimeout(connecting);
      clearTimeout(answering);
      reject(error);
    });
    request.end();
  });
}

/** S3's error document as an S3ResponseError; a body that is not one names the status instead. */
async function responseError(response: http.IncomingMessage): Promise<S3ResponseError> {
  const status = response.statusCode ?? 0;
  let text = '';
  try {
    text = (await readCapped(response, 'the error body', ERROR_BODY_MAX_BYTES)).toString('utf8');
  } catch {
    // The status alone still says what happened.
  }
  const field = (name: string) => {
    const value = new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1];
    return value?.replace(/&(#\d+|amp|lt|gt|quot|apos);/g, (_, entity: string) =>
      entity.startsWith('#') ? String.fromCharCode(Number(entity.slice(1))) : XML_ENTITIES[entity]!,
    );
  };
  const code = field('Code') ?? `Http${status}`;
  return new S3ResponseError(code, field('Message') ?? `S3 answered ${status}`, status);
}

/** Signed GETs of one bucket's objects: the read half of ObjectStore. */
export class S3Get implements Pick<ObjectStore, 'get' | 'getIfChanged'> {
  private readonly timeouts: S3Timeouts;

  constructor(private readonly settings: S3GetSettings) {
    this.timeouts = settings.timeouts ?? S3_TIMEOUT_DEFAULTS;
  }

  /** Path-style on an endpoint and for a bucket name a host cannot carry; virtual-hosted on AWS otherwise. */
  url(key: string): URL {
    const { bucket, region, endpoint } = this.settings;
    const path = key.split('/').map(uriEncode).join('/');
    if (endpoint) return new URL(`${endpoint.replace(/\/$/, '')}/${uriEncode(bucket)}/${path}`);
    if (/^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/.test(bucket))
      return new URL(`https://${bucket}.s3.${region}.amazonaws.com/${path}`);
    return new URL(`https://s3.${region}.amazonaws.com/${uriEncode(bucket)}/${path}`);
  }

  async get(key: string, options: ReadOptions = {}): Promise<StoredObject | undefined> {
    const result = await this.getIfChanged(key, undefined, options);
    return result === 'unchanged' ? undefined : result;
  }

  async getIfChanged(
    key: string,
    etag: string | undefined,
    options: ReadOptions = {},
  ): Promise<StoredObject | 'unchanged' | undefined> {
    const response = await this.answer(key, etag);
    if (response === 'unchanged' || response === undefined) return response;
    let maxBytes = Number.POSITIVE_INFINITY;
    try {
      maxBytes = (await options.maxBytes) ?? maxBytes;
    } catch (error) {
      response.destroy();
      throw error;
    }
    const length = response.headers['content-length'];
    const body = await readCapped(response, key, maxBytes, length === undefined ? undefined : Number(length));
    const tag = response.headers.etag;
    return { body, ...(tag ? { etag: tag } : {}) };
  }

  /** The 200 response with its body unread, after up to three attempts. */
  private async answer(key: string, etag: string | undefined): Promise<http.IncomingMessage | 'unchanged' | undefined> {
    const url = this.url(key);
    for (let attempt = 1; ; attempt++) {
      try {
        const { credentials, region } = this.settings;
        const headers = signS3Get(url, etag ? { 'if-none-match': etag } : {}, credentials, region);
        const response = await send(url, headers, this.timeouts);
        const status = response.statusCode;
        if (status === 200) return response;
        if (status === 304 || status === 404) {
          response.resume();
          if (status === 304) return 'unchanged';
          return undefined;
        }
        throw await responseError(response);
      } catch (error) {
        if (attempt >= MAX_ATTEMPTS || !isTransient(error)) throw error;
        const delay = Math.floor(Math.random() * 2 ** attempt * RETRY_BASE_MS);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

/** The role's credentials in the variables the SDK's environment provider reads (Lambda sets all three). */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsCredentials | undefined {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_SESSION_TOKEN } = env;
  if (!accessKeyId || !secretAccessKey) return undefined;
  return { accessKeyId, secretAccessKey, ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}) };
}

/** What reads are signed with: the endpoint's key pair, else the environment's credentials; undefined leaves them to the SDK. */
export function readCredentials(config: Config, env: NodeJS.ProcessEnv = process.env): AwsCredentials | undefined {
  return config.s3Credentials ?? credentialsFromEnv(env);
}

/**
 * The predict function's bucket: reads signed here with `credentials`;
 * everything else, and reads without credentials (a profile, SSO), through
 * the SDK adapter, imported the first time it is needed. Its specifier is a
 * variable, so a bundler leaves it and the SDK out: the predict bundle only
 * reads, with the environment's credentials (predict/handler.ts refuses to
 * start otherwise), and the local stack, which writes, runs the sources.
 */
export function servingObjects(bucket: string, config: Config, credentials = readCredentials(config)): ObjectStore {
  const adapter = './objects.ts';
  let full: Promise<ObjectStore> | undefined;
  const sdk = () =>
    (full ??= (import(adapter) as Promise<typeof import('./objects.ts')>).then(
      (m) => m.configuredBucket(bucket, config).objects,
    ));
  const reads: Pick<ObjectStore, 'get' | 'getIfChanged'> | undefined =
    credentials &&
    new S3Get({ bucket, region: config.region, endpoint: config.s3Endpoint, credentials, timeouts: config.s3Timeouts });
  return {
    get: async (key, options) => (reads ?? (await sdk())).get(key, options),
    getIfChanged: async (key, etag, options) => (reads ?? (await sdk())).getIfChanged(key, etag, options),
    put: async (...args) => (await sdk()).put(...args),
    exists: async (key) => (await sdk()).exists(key),
    list: async (prefix) => (await sdk()).list(prefix),
  };
}
