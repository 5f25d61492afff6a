/**
 * The local stand-in for S3: s3rver on 127.0.0.1 with its files under `.data/`
 * (kept between runs), so training and serving work on one machine unchanged.
 *
 * s3rver itself never listens: our own HTTP server sits in front and lets a
 * request through only when it is signed with this folder's local credentials
 * and does not come from a web page (s3rver would take anonymous writes,
 * browser form posts included). It also gives PUTs S3's conditional-write
 * semantics (If-Match / If-None-Match), which s3rver ignores, and reads S3's
 * read-after-write consistency, which s3rver's store lacks
 * (s3rver-consistency.ts).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { S3Credentials } from '../config.ts';
import { writeOwnerOnly } from '../owner-only.ts';
import { browserRefusal, errorXml, signatureRefusal, type Refusal, type RequestHead } from './s3-request-guard.ts';
import { KeyedQueue, makeConsistent } from './s3rver-consistency.ts';

export interface EmbeddedS3 {
  endpoint: string;
  bucket: string;
  /** The only key pair the server accepts; stored owner-only in its folder. */
  credentials: S3Credentials;
  close(): Promise<void>;
}

export interface EmbeddedS3Options {
  directory?: string;
  bucket?: string;
  /** 0 picks a free port (tests); the local stack uses a fixed one so a second process can share it. */
  port?: number;
}

export const DEFAULT_LOCAL_BUCKET = 'digitnet-local';
/** In the server's folder: s3rver serves only folders there (buckets), never a file. */
export const CREDENTIALS_FILE = 'credentials.json';

function isCredentials(value: unknown): value is S3Credentials {
  const pair = value as Partial<S3Credentials> | null;
  const filled = (text: unknown) => typeof text === 'string' && text !== '';
  return filled(pair?.accessKeyId) && filled(pair?.secretAccessKey);
}

/** The folder's key pair: made at random the first time, then read back, so every process on the folder shares it. */
export async function localCredentials(directory: string): Promise<S3Credentials> {
  const file = path.join(directory, CREDENTIALS_FILE);
  const fresh: S3Credentials = {
    accessKeyId: `LOCAL${randomBytes(8).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  try {
    await writeOwnerOnly(file, `${JSON.stringify(fresh)}\n`, 'wx');
    return fresh;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  await chmod(file, 0o600);
  let stored: unknown;
  try {
    stored = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    stored = undefined;
  }
  if (!isCredentials(stored))
    throw new Error(`${file} is not a key pair the embedded S3 wrote: delete it and start again`);
  return stored;
}

function refuse(response: http.ServerResponse, status: number, refusal: Refusal): void {
  const body = errorXml(refusal);
  // The body of a refused request is never read: closing the connection spares reading it to keep the socket.
  const length = Buffer.byteLength(body);
  response.writeHead(status, { 'content-type': 'application/xml', 'content-length': length, connection: 'close' });
  response.end(body);
}

/** What s3rver's store answers about an object: its ETag, or undefined when there is none. */
type EtagOf = (bucket: string, key: string) => Promise<string | undefined>;

// Subresources whose PUT does not write the object's content.
const NOT_AN_OBJECT_WRITE = ['uploadId', 'partNumber', 'tagging', 'acl', 'retention', 'legal-hold'];

/** The bucket and key a path-style request names (key '' for a bucket-level one); undefined if it is not valid percent-encoding. */
function target(url: string): { bucket: string; key: string; query: URLSearchParams } | undefined {
  const parsed = new URL(url, 'http://embedded-s3');
  const [bucket = '', ...key] = parsed.pathname.slice(1).split('/');
  try {
    return {
      bucket: decodeURIComponent(bucket),
      key: key.map(decodeURIComponent).join('/'),
      query: parsed.searchParams,
    };
  } catch {
    return undefined;
  }
}

const PRECONDITION_FAILED: Refusal = {
  code: 'PreconditionFailed',
  message: 'At least one of the pre-conditions you specified did not hold',
};
const unquote = (etag: string) =>
  etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');

/**
 * S3's answer to a conditional write, given the object's current ETag:
 * undefined to go ahead, or the status and error S3 would send.
 */
function preconditionRefusal(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
  current: string | undefined,
): [number, Refusal] | undefined {
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*')
      return [501, { code: 'NotImplemented', message: 'If-None-Match on a write takes only *' }];
    if (current !== undefined) return [412, PRECONDITION_FAILED];
  }
  if (ifMatch !== undefined) {
    // S3 answers a compare-and-swap on a missing key with 404, not 412.
    if (current === undefined) return [404, { code: 'NoSuchKey', message: 'The specified key does not exist.' }];
    const wanted = ifMatch.split(',').map(unquote);
    if (!wanted.includes('*') && !wanted.includes(unquote(current))) return [412, PRECONDITION_FAILED];
  }
  return undefined;
}

function guard(credentials: S3Credentials, etagOf: EtagOf, s3rver: http.RequestListener): http.RequestListener {
  // Writes of one key run one at a time, each from its precondition check to s3rver's answer, so no write lands
  // between another's check and its write.
  const writes = new KeyedQueue();
  return (request, response) => {
    const head: RequestHead = { method: request.method ?? 'GET', url: request.url ?? '/', headers: request.headers };
    const refusal = browserRefusal(head) ?? signatureRefusal(head, credentials);
    if (refusal) return refuse(response, 403, refusal);
    // Verified here; s3rver would look the key up in its own accounts, which know only its fixed demo pair.
    delete request.headers.authorization;

    const named = target(head.url);
    if (!named) return refuse(response, 400, { code: 'InvalidURI', message: 'the path is not valid percent-encoding' });
    const { bucket, key, query } = named;
    if (head.method === 'POST' && key === '' && !query.has('delete')) {
      // POST Object is S3's upload from an HTML form: nothing here uses it, and it is s3rver's only use of busboy/dicer.
      return refuse(response, 403, {
        code: 'AccessDenied',
        message: 'the embedded S3 does not take POST Object (form) uploads',
      });
    }
    const ifMatch = request.headers['if-match'];
    const ifNoneMatch = request.headers['if-none-match'];
    const conditional = ifMatch !== undefined || ifNoneMatch !== undefined;
    const isObjectWrite = head.method === 'PUT' && key !== '' && !NOT_AN_OBJECT_WRITE.some((name) => query.has(name));
    if (!isObjectWrite) {
      if (conditional && head.method !== 'GET' && head.method !== 'HEAD') {
        // A condition silently ignored would be a lock that always succeeds.
        const message = 'the embedded S3 honours If-Match / If-None-Match on writes only for PutObject and CopyObject';
        return refuse(response, 501, { code: 'NotImplemented', message });
      }
      return s3rver(request, response);
    }
    void writes.acquire(`${bucket}/${key}`).then(async (release) => {
      response.once('close', release);
      try {
        const failed = conditional && preconditionRefusal(ifMatch, ifNoneMatch, await etagOf(bucket, key));
        if (failed) return refuse(response, ...failed);
        s3rver(request, response);
      } catch {
        refuse(response, 500, { code: 'InternalError', message: 'the embedded S3 could not read the object’s ETag' });
      }
    });
  };
}

export async function startEmbeddedS3(options: EmbeddedS3Options = {}): Promise<EmbeddedS3> {
  const directory = path.resolve(options.directory ?? '.data/s3');
  const bucket = options.bucket ?? DEFAULT_LOCAL_BUCKET;
  await mkdir(directory, { recursive: true, mode: 0o700 });
  // The models and the credentials are this user's alone, also in a folder an older version made 0755.
  await chmod(directory, 0o700);
  const credentials = await localCredentials(directory);
  // s3rver is CommonJS without types and a devDependency: it is never part of a Lambda bundle.
  const S3rver = createRequire(import.meta.url)('s3rver');
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  await s3rver.configureBuckets();
  const metadataOf = makeConsistent(s3rver.store);
  const etagOf: EtagOf = async (bucketName, key) => {
    try {
      return (await metadataOf(bucketName, key)).etag;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  };
  const server = http.createServer(guard(credentials, etagOf, s3rver.callback()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    credentials,
    close: async () => {
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
      s3rver.logger.close();
    },
  };
}
