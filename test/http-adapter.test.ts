/**
 * The local HTTP adapter's body limit, over real sockets on 127.0.0.1: a client
 * that writes its whole over-long body before reading (as Python's urllib and
 * browsers' fetch do) reads the 413 JSON rather than a connection reset; a
 * client that never stops sending is cut off; and the largest body it lets
 * through still fits Lambda's invocation payload once turned into an event.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { LAMBDA_PAYLOAD_BYTES } from '#lib/predict-request';
import { MAX_REQUEST_BYTES, serveHandler, type ServedHandler } from '../scripts/local/http-adapter.ts';

const TOO_LARGE = {
  error: { code: 'body_too_large', message: `the request body is over ${MAX_REQUEST_BYTES} bytes` },
};
const TWELVE_MB = 12 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
const CHUNK_FRAME = Buffer.concat([Buffer.from(`${CHUNK.length.toString(16)}\r\n`), CHUNK, Buffer.from('\r\n')]);

let served: ServedHandler;
let port: number;
let lastEvent: APIGatewayProxyEventV2 | undefined;

before(async () => {
  served = await serveHandler(
    async (event) => {
      lastEvent = event;
      return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
    },
    { host: '127.0.0.1', port: 0, onError: (error) => assert.fail(String(error)) },
  );
  port = Number(new URL(served.url).port);
});
after(() => served.close());

interface RawExchange {
  status: number;
  headers: string;
  body: string;
  error?: NodeJS.ErrnoException;
}

function parseResponse(raw: string, error?: NodeJS.ErrnoException): RawExchange {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body: raw.slice(split + 4), error };
}

/**
 * Writes the request head and then `bodyBytes` of body, waiting for each write
 * to be taken before the next, and only then reads: the urllib pattern.
 */
async function writeAllThenRead(bodyBytes: number, framing: 'content-length' | 'chunked'): Promise<RawExchange> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.pause();
  const received: Buffer[] = [];
  let failure: NodeJS.ErrnoException | undefined;
  socket.on('error', (error) => (failure = error));
  const write = (data: Buffer | string) =>
    new Promise<void>((resolve, reject) => socket.write(data, (error) => (error ? reject(error) : resolve())));
  const length = framing === 'content-length' ? `Content-Length: ${bodyBytes}` : 'Transfer-Encoding: chunked';
  const head = 'POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n';
  await write(`${head}${length}\r\n\r\n`);
  for (let sent = 0; sent < bodyBytes; sent += CHUNK.length) await write(framing === 'chunked' ? CHUNK_FRAME : CHUNK);
  if (framing === 'chunked') await write('0\r\n\r\n');
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.resume();
  await once(socket, 'close');
  return parseResponse(Buffer.concat(received).toString('latin1'), failure);
}

describe('a body over the limit', () => {
  test('a client that sends a declared 12 MB body before reading gets the 413 JSON, not a reset', async () => {
    const result = await writeAllThenRead(TWELVE_MB, 'content-length');
    assert.equal(result.error, undefined);
    assert.equal(result.status, 413);
    assert.deepEqual(JSON.parse(result.body), TOO_LARGE);
  });

  test('a client that streams a chunked 12 MB body before reading gets the 413 JSON, not a reset', async () => {
    const result = await writeAllThenRead(TWELVE_MB, 'chunked');
    assert.equal(result.error, undefined);
    assert.equal(result.status, 413);
    assert.deepEqual(JSON.parse(result.body), TOO_LARGE);
  });

  test("node's http.request writing 12 MB in chunks reads the 413 JSON without an error", async () => {
    const headers = { 'content-length': TWELVE_MB };
    const request = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/predict', headers });
    let failure: Error | undefined;
    request.on('error', (error) => (failure = error));
    const closed = once(request, 'close');
    const response = once(request, 'response').then(async ([res]: http.IncomingMessage[]) => {
      const chunks: Buffer[] = [];
      for await (const chunk of res!) chunks.push(chunk as Buffer);
      return { status: res!.statusCode, body: Buffer.concat(chunks).toString('utf8') };
    });
    // Node's client stops uploading by itself once it holds a complete `connection: close` response.
    for (let sent = 0; sent < TWELVE_MB && !request.destroyed; sent += CHUNK.length) {
      if (!request.write(CHUNK)) await Promise.race([once(request, 'drain'), closed]);
    }
    if (!request.destroyed) request.end();
    const { status, body } = await response;
    await closed;
    assert.equal(failure, undefined);
    assert.equal(status, 413);
    assert.deepEqual(JSON.parse(body), TOO_LARGE);
  });

  test('a client that never stops sending is cut off after the 413', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {});
    socket.write('POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
    let closed = false;
    socket.once('close', () => (closed = true));
    while (!closed) {
      if (!socket.write(CHUNK_FRAME))
        await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
    }
    assert.equal(parseResponse(Buffer.concat(received).toString('latin1')).status, 413);
  });
});

describe('the largest body let through', () => {
  const headers = { 'x-padding': 'p'.repeat(8 * 1024) };

  for (const [kind, contentType] of [
    ['binary, which the event carries base64-encoded', 'application/octet-stream'],
    ['JSON', 'application/json'],
  ] as const) {
    test(`${kind}: its event fits Lambda's ${LAMBDA_PAYLOAD_BYTES}-byte invocation payload`, async () => {
      lastEvent = undefined;
      const response = await fetch(`${served.url}/predict`, {
        method: 'POST',
        headers: { ...headers, 'content-type': contentType },
        body: 'A'.repeat(MAX_REQUEST_BYTES),
      });
      assert.equal(response.status, 200);
      assert.ok(lastEvent, 'the handler was called');
      const size = Buffer.byteLength(JSON.stringify(lastEvent));
      assert.ok(size <= LAMBDA_PAYLOAD_BYTES, `the event is ${size} bytes`);
    });
  }
});
