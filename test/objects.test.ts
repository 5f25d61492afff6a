import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { ObjectTooLargeError, WriteConflictError } from '#lib/errors';
import { createS3Client, S3ObjectStore } from '#lib/storage/objects';

/** A stand-in for S3 on 127.0.0.1 that answers every request with `respond`, recording what it was sent. */
async function fakeS3(respond: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const requests: http.IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req);
    req.resume();
    req.on('end', () => respond(req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = createS3Client({
    bucket: 'b',
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  after(() => {
    client.destroy();
    server.closeAllConnections();
    server.close();
  });
  return { objects: new S3ObjectStore(client, 'b'), requests };
}

const s3Error = (res: http.ServerResponse, status: number, code: string) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
};

describe('S3ObjectStore', () => {
  for (const [status, code] of [
    [412, 'PreconditionFailed'],
    [409, 'ConditionalRequestConflict'],
  ] as const) {
    test(`a conditional put answered ${status} ${code} is a WriteConflictError, and the condition was sent`, async () => {
      const s3 = await fakeS3((_req, res) => s3Error(res, status, code));
      await assert.rejects(
        s3.objects.put('models/latest.json', '{}', 'application/json', { ifMatch: '"abc"' }),
        WriteConflictError,
      );
      assert.equal(s3.requests.at(-1)!.headers['if-match'], '"abc"');
      await assert.rejects(
        s3.objects.put('models/latest.json', '{}', 'application/json', { ifNoneMatch: '*' }),
        WriteConflictError,
      );
      assert.equal(s3.requests.at(-1)!.headers['if-none-match'], '*');
    });
  }

  test('If-Match on a key that is gone (S3 answers 404 NoSuchKey) is a WriteConflictError too; without a condition a 404 stays an error', async () => {
    const s3 = await fakeS3((_req, res) => s3Error(res, 404, 'NoSuchKey'));
    await assert.rejects(
      s3.objects.put('models/latest.json', '{}', 'application/json', { ifMatch: '"abc"' }),
      WriteConflictError,
    );
    await assert.rejects(
      s3.objects.put('models/latest.json', '{}', 'application/json'),
      (error: Error) => !(error instanceof WriteConflictError),
    );
  });

  test('an object whose Content-Length is over the cap is refused without waiting for its body', {
    timeout: 30_000,
  }, async () => {
    // Announces 100 MB, sends 1 KB and then nothing: only a check of the length before reading can answer.
    const s3 = await fakeS3((_req, res) => {
      res.writeHead(200, { 'content-length': String(100 * 1024 * 1024), etag: '"x"' });
      res.write(Buffer.alloc(1024));
    });
    await assert.rejects(s3.objects.get('models/v/weights.bin', { maxBytes: 1024 * 1024 }), ObjectTooLargeError);
  });

  test('a cap given as a promise is awaited once the size is known', async () => {
    const s3 = await fakeS3((_req, res) => {
      res.writeHead(200, { 'content-length': '10', etag: '"x"' });
      res.end(Buffer.alloc(10));
    });
    await assert.rejects(s3.objects.get('k', { maxBytes: Promise.resolve(9) }), /10 bytes, over the 9-byte limit/);
    assert.equal((await s3.objects.get('k', { maxBytes: Promise.resolve(10) }))?.body.byteLength, 10);
  });
});
