/**
 * The embedded S3's own door: only requests signed with its folder's local
 * credentials get through, never one from a web page; and PUTs honour S3's
 * conditional writes. Real s3rver behind the real guard, on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3ServiceException,
  type S3Client,
} from '@aws-sdk/client-s3';
import { CREDENTIALS_FILE, startEmbeddedS3 } from '#lib/storage/embedded-s3';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS } from '#lib/storage/objects';
import { LATEST_KEY } from '#lib/storage/store';
import { tempDir, testBucket, type TestBucket } from './support/env.ts';

interface RawAnswer {
  status: number;
  type: string | undefined;
  body: string;
}

/** One request as any local program (or a browser) could send it: no SDK, no signature unless given. */
function raw(
  endpoint: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer | string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(endpoint + target, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode!,
          type: response.headers['content-type'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** Signs as the SDK does for S3: the path as sent, not escaped a second time. */
function signerFor(bucket: TestBucket): SignatureV4 {
  return new SignatureV4({
    service: 's3',
    region: 'us-east-1',
    credentials: bucket.credentials,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
  });
}

/** `raw`, signed with the bucket's key pair. */
async function signedRaw(
  bucket: TestBucket,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawAnswer> {
  const url = new URL(bucket.endpoint);
  const [path, query = ''] = target.split('?');
  const signed = await signerFor(bucket).sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: path!,
    query: Object.fromEntries(new URLSearchParams(query)),
    headers: { ...headers, host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
  });
  return raw(bucket.endpoint, method, target, signed.headers, body);
}

/** An S3 client with its own key pair; closed when the test ends. */
function clientFor(t: { after(fn: () => void): void }, bucket: TestBucket, credentials = bucket.credentials): S3Client {
  const client = createS3Client({
    bucket: bucket.bucket,
    endpoint: bucket.endpoint,
    credentials,
    timeouts: IN_PROCESS_S3_TIMEOUTS,
  });
  t.after(() => client.destroy());
  return client;
}

/** Adds headers to every request before it is signed, as a caller that sets them itself would. */
function withHeaders(client: S3Client, headers: Record<string, string>): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      Object.assign((args.request as { headers: Record<string, string> }).headers, headers);
      return next(args);
    },
    { step: 'build', name: 'testHeaders' },
  );
  return client;
}

async function s3Error(promise: Promise<unknown>): Promise<[number | undefined, string]> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, String(error));
    return [error.$metadata.httpStatusCode, error.name];
  }
  assert.fail('the request succeeded');
}

const POINTER = JSON.stringify({ version: 'mlp-20260101T000000000Z' });

describe('embedded S3: who may call it', () => {
  test('refuses an unsigned GET and an unsigned PUT with 403 and an S3 XML error, and writes nothing', async () => {
    const bucket = await testBucket();
    await bucket.objects.put('kept.txt', 'kept');
    const get = await raw(bucket.endpoint, 'GET', `/${bucket.bucket}/kept.txt`);
    assert.deepEqual([get.status, get.type], [403, 'application/xml']);
    assert.match(get.body, /<Code>AccessDenied<\/Code>/);
    assert.doesNotMatch(get.body, /kept/);
    const put = await raw(
      bucket.endpoint,
      'PUT',
      `/${bucket.bucket}/kept.txt`,
      { 'content-type': 'text/plain' },
      'overwritten',
    );
    assert.equal(put.status, 403);
    assert.equal((await bucket.objects.get('kept.txt'))!.body.toString(), 'kept');
  });

  test('refuses the credential-less multipart form POST that used to write models/latest.json, and the pointer is unchanged', async () => {
    const bucket = await testBucket();
    await bucket.objects.put(LATEST_KEY, POINTER, 'application/json');
    const boundary = 'digitnet-test-boundary';
    const form = [
      `--${boundary}\r\nContent-Disposition: form-data; name="key"\r\n\r\n${LATEST_KEY}\r\n`,
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="latest.json"\r\nContent-Type: application/json\r\n\r\n`,
      '{"version":"attacker"}\r\n',
      `--${boundary}--\r\n`,
    ].join('');
    const answer = await raw(
      bucket.endpoint,
      'POST',
      `/${bucket.bucket}`,
      { 'content-type': `multipart/form-data; boundary=${boundary}` },
      form,
    );
    assert.equal(answer.status, 403);
    assert.match(answer.body, /<Code>AccessDenied<\/Code>/);
    assert.equal((await bucket.objects.get(LATEST_KEY))!.body.toString(), POINTER);
  });

  test('refuses a correctly signed request that carries an Origin header, or a browser’s Sec-Fetch-* headers', async (t) => {
    const bucket = await testBucket();
    await bucket.objects.put('kept.txt', 'kept');
    const fromBrowsers: Record<string, string>[] = [
      { origin: 'https://example.com' },
      { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' },
    ];
    for (const headers of fromBrowsers) {
      const client = withHeaders(clientFor(t, bucket), headers);
      assert.deepEqual(
        await s3Error(client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: 'kept.txt' }))),
        [403, 'AccessDenied'],
        JSON.stringify(headers),
      );
      const put = client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: 'kept.txt', Body: 'overwritten' }));
      assert.deepEqual(await s3Error(put), [403, 'AccessDenied']);
    }
    assert.equal((await bucket.objects.get('kept.txt'))!.body.toString(), 'kept');
  });

  test('refuses a form POST, and any POST Object upload, even when signed', async () => {
    const bucket = await testBucket();
    const form = await signedRaw(
      bucket,
      'POST',
      `/${bucket.bucket}`,
      { 'content-type': 'multipart/form-data; boundary=b' },
      '--b--\r\n',
    );
    assert.equal(form.status, 403);
    assert.match(form.body, /refuses form posts/);
    // Whatever its content type: POST Object is a browser upload, and s3rver hands it to busboy.
    const octets = await signedRaw(
      bucket,
      'POST',
      `/${bucket.bucket}`,
      { 'content-type': 'application/octet-stream' },
      'x',
    );
    assert.equal(octets.status, 403);
    assert.match(octets.body, /does not take POST Object/);
    const signedGet = await signedRaw(bucket, 'GET', `/${bucket.bucket}?list-type=2`);
    assert.equal(signedGet.status, 200, 'the same signing gets through on a plain request');
  });

  test('refuses a presigned URL, even one made with the right key pair: nothing here uses them', async () => {
    const bucket = await testBucket();
    await bucket.objects.put('kept.txt', 'kept');
    const url = new URL(bucket.endpoint);
    const path = `/${bucket.bucket}/kept.txt`;
    const presigned = await signerFor(bucket).presign({
      method: 'GET',
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path,
      query: {},
      headers: { host: url.host },
    });
    const answer = await raw(
      bucket.endpoint,
      'GET',
      `${path}?${new URLSearchParams(presigned.query as Record<string, string>)}`,
    );
    assert.equal(answer.status, 403);
    assert.match(answer.body, /presigned/);
  });

  test('answers a signed request whose path is not valid percent-encoding with 400, and keeps serving', async () => {
    const bucket = await testBucket();
    const bad = await signedRaw(bucket, 'PUT', `/${bucket.bucket}/bad%E0`, { 'if-none-match': '*' }, 'x');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /<Code>InvalidURI<\/Code>/);
    await bucket.objects.put('after.txt', 'still serving');
    assert.equal((await bucket.objects.get('after.txt'))!.body.toString(), 'still serving');
  });

  test('refuses a request signed with the wrong secret, another access key or S3RVER’s fixed pair', async (t) => {
    const bucket = await testBucket();
    const get = (client: S3Client) => client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: 'any.txt' }));
    const wrongSecret = clientFor(t, bucket, {
      ...bucket.credentials,
      secretAccessKey: `${bucket.credentials.secretAccessKey}x`,
    });
    assert.deepEqual(await s3Error(get(wrongSecret)), [403, 'SignatureDoesNotMatch']);
    const otherKey = clientFor(t, bucket, { ...bucket.credentials, accessKeyId: 'LOCAL0000000000000000' });
    assert.deepEqual(await s3Error(get(otherKey)), [403, 'InvalidAccessKeyId']);
    const s3rverDefault = clientFor(t, bucket, { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    assert.deepEqual(await s3Error(get(s3rverDefault)), [403, 'InvalidAccessKeyId']);
  });

  test('refuses a request signed more than 15 minutes ago', async (t) => {
    const bucket = await testBucket();
    const client = createS3Client({
      bucket: bucket.bucket,
      endpoint: bucket.endpoint,
      credentials: bucket.credentials,
      timeouts: IN_PROCESS_S3_TIMEOUTS,
    });
    t.after(() => client.destroy());
    // One attempt: the SDK would otherwise correct its clock from the answer and retry.
    client.config.systemClockOffset = -20 * 60_000;
    client.config.maxAttempts = async () => 1;
    assert.deepEqual(await s3Error(client.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: 'any.txt' }))), [
      403,
      'RequestTimeTooSkewed',
    ]);
  });

  test('the project’s own client gets, puts, lists, checks and conditionally gets, with keys that need encoding', async () => {
    const { objects } = await testBucket();
    const key = 'models/a b+c=d&e/ü~(1).json';
    await objects.put(key, '{"a":1}', 'application/json');
    await objects.put('models/other.json', '{}', 'application/json');
    const stored = await objects.get(key);
    assert.equal(stored!.body.toString(), '{"a":1}');
    assert.deepEqual(await objects.list('models/'), [key, 'models/other.json'].sort());
    assert.equal(await objects.exists(key), true);
    assert.equal(await objects.exists('models/none.json'), false);
    assert.equal(await objects.get('models/none.json'), undefined);
    assert.equal(await objects.getIfChanged(key, stored!.etag), 'unchanged');
    await objects.put(key, '{"a":2}', 'application/json');
    const changed = await objects.getIfChanged(key, stored!.etag);
    assert.ok(changed !== 'unchanged' && changed?.body.toString() === '{"a":2}');
  });
});

describe('embedded S3: conditional writes, as S3 answers them', () => {
  const put = (
    client: S3Client,
    bucket: TestBucket,
    body: string,
    condition: { IfMatch?: string; IfNoneMatch?: string },
  ) => client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: LATEST_KEY, Body: body, ...condition }));
  const pointer = async (bucket: TestBucket) => (await bucket.objects.get(LATEST_KEY))?.body.toString();

  test('If-None-Match: * creates a missing object, and is refused with 412 once it exists', async (t) => {
    const bucket = await testBucket();
    const client = clientFor(t, bucket);
    await put(client, bucket, 'first', { IfNoneMatch: '*' });
    assert.equal(await pointer(bucket), 'first');
    assert.deepEqual(await s3Error(put(client, bucket, 'second', { IfNoneMatch: '*' })), [412, 'PreconditionFailed']);
    assert.equal(await pointer(bucket), 'first');
  });

  test('If-Match with the current ETag replaces the object; with a stale one it is refused with 412', async (t) => {
    const bucket = await testBucket();
    const client = clientFor(t, bucket);
    await bucket.objects.put(LATEST_KEY, 'first');
    const first = (await bucket.objects.get(LATEST_KEY))!.etag!;
    const written = await put(client, bucket, 'second', { IfMatch: first });
    assert.notEqual(written.ETag, first);
    assert.equal(await pointer(bucket), 'second');
    assert.deepEqual(await s3Error(put(client, bucket, 'third', { IfMatch: first })), [412, 'PreconditionFailed']);
    assert.equal(await pointer(bucket), 'second');
  });

  test('If-Match on a missing key is refused with 404 NoSuchKey and creates nothing', async (t) => {
    const bucket = await testBucket();
    const client = clientFor(t, bucket);
    assert.deepEqual(await s3Error(put(client, bucket, 'first', { IfMatch: '"0123456789abcdef0123456789abcdef"' })), [
      404,
      'NoSuchKey',
    ]);
    assert.equal(await pointer(bucket), undefined);
  });

  test('of many writers racing with the same ETag, or racing to create, exactly one wins', async (t) => {
    const bucket = await testBucket();
    const client = clientFor(t, bucket);
    // Bodies differ from one race to the next: rewriting the same bytes keeps the ETag, and S3 lets that through.
    const race = async (round: string, condition: { IfMatch?: string; IfNoneMatch?: string }) => {
      const body = (i: number) => `${round}: writer ${i}`;
      const outcomes = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => put(client, bucket, body(i), condition)),
      );
      const winners = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [body(i)] : []));
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected')
          assert.equal((outcome.reason as S3ServiceException).name, 'PreconditionFailed');
      }
      assert.equal(winners.length, 1, `winners: ${winners.join(', ')}`);
      assert.equal(await pointer(bucket), winners[0]);
    };
    await race('create', { IfNoneMatch: '*' });
    await race('replace', { IfMatch: (await bucket.objects.get(LATEST_KEY))!.etag! });
  });

  test('a condition on a write it does not implement is refused with 501, not ignored', async (t) => {
    const bucket = await testBucket();
    const client = clientFor(t, bucket);
    await bucket.objects.put(LATEST_KEY, 'kept');
    const stale = '"0123456789abcdef0123456789abcdef"';
    assert.deepEqual(
      await s3Error(client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: LATEST_KEY, IfMatch: stale }))),
      [501, 'NotImplemented'],
    );
    assert.deepEqual(await s3Error(put(client, bucket, 'other', { IfNoneMatch: stale })), [501, 'NotImplemented']);
    assert.equal(await pointer(bucket), 'kept');
  });
});

describe('embedded S3: reads while it writes, as S3 answers them', () => {
  test('a read right after a write, or during one, gets a whole object, the old or the new, with its own ETag', async () => {
    const bucket = await testBucket();
    const key = 'models/latest.json';
    // Of different lengths, so a read of a half-written or a truncated file shows.
    const bodies = ['a'.repeat(300_000), 'b'.repeat(2_000)];
    const whole = async () => {
      const read = (await bucket.objects.get(key))!;
      const body = read.body.toString();
      assert.ok(bodies.includes(body), `read ${read.body.length} bytes, not a whole object`);
      assert.equal(read.etag, JSON.stringify(createHash('md5').update(body).digest('hex')));
      return body;
    };
    await bucket.objects.put(key, bodies[1]!);
    for (let round = 0; round < 40; round++) {
      const body = bodies[round % 2]!;
      await Promise.all([bucket.objects.put(key, body), whole(), whole(), whole()]);
      assert.equal(await whole(), body, `round ${round}: the read after the write`);
    }
  });
});

describe('embedded S3: its folder and key pair', () => {
  test('makes the folder 0700 and the key pair 0600, and keeps the pair across restarts', async () => {
    const directory = path.join(await tempDir(), 's3');
    const first = await startEmbeddedS3({ directory });
    await first.close();
    const second = await startEmbeddedS3({ directory });
    await second.close();
    assert.deepEqual(second.credentials, first.credentials);
    assert.equal((await stat(directory)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(directory, CREDENTIALS_FILE))).mode & 0o777, 0o600);
  });

  test('tightens a folder and a key pair file that others could read', async () => {
    const directory = path.join(await tempDir(), 's3');
    await mkdir(directory);
    await chmod(directory, 0o755);
    const file = path.join(directory, CREDENTIALS_FILE);
    await writeFile(file, JSON.stringify({ accessKeyId: 'LOCALKEPT', secretAccessKey: 'kept-secret' }));
    await chmod(file, 0o644);
    const server = await startEmbeddedS3({ directory });
    await server.close();
    assert.deepEqual(server.credentials, { accessKeyId: 'LOCALKEPT', secretAccessKey: 'kept-secret' });
    assert.equal((await stat(directory)).mode & 0o777, 0o700);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  test('refuses to start on a key pair file it did not write, naming it', async () => {
    const directory = await tempDir();
    const file = path.join(directory, CREDENTIALS_FILE);
    await writeFile(file, '{"accessKeyId":""}');
    await assert.rejects(startEmbeddedS3({ directory }), (error: Error) =>
      error.message.startsWith(`${file} is not a key pair`),
    );
    assert.equal(await readFile(file, 'utf8'), '{"accessKeyId":""}');
  });
});
