import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { readConfig } from '#lib/config';
import { ObjectTooLargeError } from '#lib/errors';
import {
  credentialsFromEnv,
  readCredentials,
  S3Get,
  S3ResponseError,
  servingObjects,
  signS3Get,
} from '#lib/storage/s3-get';
import { testBucket, type TestBucket } from './support/env.ts';

let bucket: TestBucket;
before(async () => {
  bucket = await testBucket();
  await bucket.objects.put('models/v/weights.bin', Buffer.from('0123456789'));
});

const reader = (over: Partial<ConstructorParameters<typeof S3Get>[0]> = {}) =>
  new S3Get({
    bucket: bucket.bucket,
    region: 'us-east-1',
    endpoint: bucket.endpoint,
    credentials: bucket.credentials,
    ...over,
  });

describe('signS3Get', () => {
  test('signs a GET exactly as @smithy/signature-v4 does, session token and If-None-Match included', async () => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret/example+key', sessionToken: 'token=+/' };
    const url = new URL('https://my-bucket.s3.eu-west-1.amazonaws.com/models/20261203T000000Z-mlp/weights.bin');
    const now = new Date('2026-12-03T14:15:16Z');
    const ours = signS3Get(url, { 'if-none-match': '"abc"' }, credentials, 'eu-west-1', now);
    const smithy = await new SignatureV4({
      service: 's3',
      region: 'eu-west-1',
      credentials,
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
    }).sign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: url.hostname,
        path: url.pathname,
        headers: {
          host: url.host,
          'if-none-match': '"abc"',
          'x-amz-content-sha256': ours['x-amz-content-sha256']!,
        },
      },
      { signingDate: now },
    );
    assert.equal(ours.authorization, smithy.headers.authorization);
    assert.equal(ours['x-amz-security-token'], 'token=+/');
    assert.match(
      ours.authorization!,
      /SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date;x-amz-security-token,/,
    );
  });
});

describe('S3Get.url', () => {
  const on = (bucketName: string, endpoint?: string) =>
    new S3Get({
      bucket: bucketName,
      region: 'eu-west-1',
      endpoint,
      credentials: { accessKeyId: 'a', secretAccessKey: 's' },
    });

  test('is virtual-hosted on AWS, path-style for a bucket name a host cannot carry and on an endpoint', () => {
    assert.equal(
      on('digitnet-dev-bucket').url('models/latest.json').href,
      'https://digitnet-dev-bucket.s3.eu-west-1.amazonaws.com/models/latest.json',
    );
    assert.equal(
      on('my.bucket').url('models/latest.json').href,
      'https://s3.eu-west-1.amazonaws.com/my.bucket/models/latest.json',
    );
    assert.equal(
      on('b', 'http://127.0.0.1:9000/').url('models/latest.json').href,
      'http://127.0.0.1:9000/b/models/latest.json',
    );
  });

  test('percent-encodes each segment of a key as SigV4 wants, keeping its slashes', () => {
    assert.equal(on('b', 'http://127.0.0.1:9000').url("a b/c+d/(e)!*'").pathname, '/b/a%20b/c%2Bd/%28e%29%21%2A%27');
  });
});

describe('S3Get against the embedded S3 (which checks every signature)', () => {
  test('reads an object with its ETag; the same ETag is unchanged; a missing key is undefined', async () => {
    const got = await reader().get('models/v/weights.bin');
    assert.equal(got?.body.toString(), '0123456789');
    assert.match(got!.etag!, /^".+"$/);
    assert.equal(await reader().getIfChanged('models/v/weights.bin', got!.etag), 'unchanged');
    assert.equal((await reader().getIfChanged('models/v/weights.bin', '"other"')) !== 'unchanged', true);
    assert.equal(await reader().get('models/v/missing.json'), undefined);
  });

  test('a request signed with another secret is refused as the SDK reports it: SignatureDoesNotMatch, 403', async () => {
    const wrong = reader({ credentials: { ...bucket.credentials, secretAccessKey: 'not-the-secret' } });
    await assert.rejects(
      wrong.get('models/v/weights.bin'),
      (error: S3ResponseError) =>
        error instanceof S3ResponseError &&
        error.name === 'SignatureDoesNotMatch' &&
        error.$metadata.httpStatusCode === 403,
    );
  });

  test('a session token is signed with the request and accepted', async () => {
    const got = await reader({ credentials: { ...bucket.credentials, sessionToken: 'a-session-token' } }).get(
      'models/v/weights.bin',
    );
    assert.equal(got?.body.toString(), '0123456789');
  });

  test('the caps of S3ObjectStore: over the cap is ObjectTooLargeError, a promised cap is awaited', async () => {
    await assert.rejects(reader().get('models/v/weights.bin', { maxBytes: 9 }), ObjectTooLargeError);
    // As ModelStore passes one: awaited only once the answer arrives, so handled before then.
    const refused = Promise.reject(new RangeError('no cap'));
    refused.catch(() => {});
    await assert.rejects(reader().get('models/v/weights.bin', { maxBytes: refused }), RangeError);
    assert.equal((await reader().get('models/v/weights.bin', { maxBytes: Promise.resolve(10) }))?.body.byteLength, 10);
  });

  test('servingObjects reads without the SDK and writes through it, both against the same bucket', async () => {
    const config = readConfig(bucket.env);
    const objects = servingObjects(bucket.bucket, config);
    await objects.put('models/v/other.json', '{"a":1}', 'application/json');
    assert.equal((await objects.get('models/v/other.json'))?.body.toString(), '{"a":1}');
    assert.equal(await objects.exists('models/v/other.json'), true);
  });
});

describe('credentialsFromEnv', () => {
  test('takes the key pair and session token Lambda sets, and nothing without a pair', () => {
    assert.deepEqual(
      credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret', AWS_SESSION_TOKEN: 'token' }),
      { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'token' },
    );
    assert.equal(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'id' }), undefined);
  });

  test("reads are signed with the endpoint's key pair when there is one, else the environment's", () => {
    const env = { AWS_ACCESS_KEY_ID: 'id', AWS_SECRET_ACCESS_KEY: 'secret' };
    const { accessKeyId, secretAccessKey } = bucket.credentials;
    assert.deepEqual(readCredentials(readConfig(bucket.env), env), { accessKeyId, secretAccessKey });
    assert.deepEqual(readCredentials(readConfig({ BUCKET: 'b' }), env), {
      accessKeyId: 'id',
      secretAccessKey: 'secret',
    });
  });
});

/** A stand-in for S3 on 127.0.0.1 whose `respond` decides each answer, counting the requests. */
async function fakeS3(respond: (res: http.ServerResponse, attempt: number) => void) {
  let attempts = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    respond(res, ++attempts);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  const get = new S3Get({
    bucket: 'b',
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
    timeouts: { connectMs: 1_000, requestMs: 200 },
  });
  return { get, attempts: () => attempts };
}

describe('S3Get on a misbehaving server', () => {
  test('a server that never answers is a TimeoutError after three attempts', { timeout: 10_000 }, async () => {
    const s3 = await fakeS3(() => {});
    await assert.rejects(s3.get.get('k'), { name: 'TimeoutError' });
    assert.equal(s3.attempts(), 3);
  });

  test('a body that stalls while its cap is still awaited is a TimeoutError once the cap arrives', {
    timeout: 10_000,
  }, async () => {
    const s3 = await fakeS3((res) => {
      res.writeHead(200, { 'content-length': '10', etag: '"x"' });
      res.write('01234');
    });
    const cap = new Promise<number>((resolve) => setTimeout(() => resolve(10), 600));
    await assert.rejects(s3.get.get('k', { maxBytes: cap }), { name: 'TimeoutError' });
  });

  test('a body that stalls half-way is a TimeoutError', { timeout: 10_000 }, async () => {
    const s3 = await fakeS3((res) => {
      res.writeHead(200, { 'content-length': '10', etag: '"x"' });
      res.write('01234');
    });
    await assert.rejects(s3.get.get('k'), { name: 'TimeoutError' });
  });

  test('an announced length over the cap is refused without waiting for the body', { timeout: 10_000 }, async () => {
    const s3 = await fakeS3((res) => {
      res.writeHead(200, { 'content-length': String(100 * 1024 * 1024), etag: '"x"' });
      res.write(Buffer.alloc(1024));
    });
    await assert.rejects(s3.get.get('k', { maxBytes: 1024 * 1024 }), ObjectTooLargeError);
  });

  test('a body without a length is cut off as soon as it passes the cap', async () => {
    const s3 = await fakeS3((res) => {
      res.writeHead(200, { etag: '"x"' });
      res.write(Buffer.alloc(600));
      res.write(Buffer.alloc(600));
    });
    await assert.rejects(s3.get.get('k', { maxBytes: 1000 }), ObjectTooLargeError);
  });

  test('a 503 is retried; a 403 is not, and keeps its code and message (XML entities decoded)', async () => {
    const s3 = await fakeS3((res, attempt) => {
      if (attempt === 1) res.writeHead(503).end('<Error><Code>SlowDown</Code><Message>slow</Message></Error>');
      else if (attempt === 2) res.writeHead(200, { 'content-length': '2', etag: '"x"' }).end('ok');
      else
        res
          .writeHead(403)
          .end('<Error><Code>AccessDenied</Code><Message>Access &amp; the key&#8217;s policy</Message></Error>');
    });
    assert.equal((await s3.get.get('k'))?.body.toString(), 'ok');
    assert.equal(s3.attempts(), 2);
    await assert.rejects(s3.get.get('k'), {
      name: 'AccessDenied',
      message: 'Access & the key’s policy',
      $metadata: { httpStatusCode: 403 },
    });
    assert.equal(s3.attempts(), 3);
  });
});
