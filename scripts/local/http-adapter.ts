/**
 * Serves a Lambda handler over plain HTTP the way API Gateway's HTTP API (v2)
 * would call it: same event shape, binary bodies base64-encoded, a request id
 * per call. Only for the local stack; in the cloud API Gateway does this.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { bodyTooLarge, errorResult, internalError } from '#lib/http';
import { MAX_BODY_BYTES } from '#lib/predict-request';

export type LambdaLike = (
  event: APIGatewayProxyEventV2,
  context: { awsRequestId: string },
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * The largest body the deployed API passes to its Lambda (see MAX_BODY_BYTES), so
 * the local server and the cloud refuse the same requests; larger bodies are
 * refused while still streaming in.
 */
export const MAX_REQUEST_BYTES = MAX_BODY_BYTES;
/**
 * Past the limit, the rest of a body is read and thrown away, up to this many
 * bytes or this long, before the connection is closed: a client that writes its
 * whole body before reading (Python's urllib, browsers' fetch) then reads the
 * 413 instead of a connection reset. Past either bound the socket is cut, so an
 * endless body costs a bounded amount of work and no memory.
 */
export const DISCARD_LIMIT_BYTES = 4 * MAX_REQUEST_BYTES;
const DISCARD_LIMIT_MS = 15_000;
const TEXT_TYPES = /^(application\/json|text\/|application\/x-www-form-urlencoded)/i;

export interface ServedHandler {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

function toEvent(req: http.IncomingMessage, body: Buffer, requestId: string): APIGatewayProxyEventV2 {
  // Prefixed rather than resolved: '//predict' must stay a path, not become a host.
  const url = new URL(`http://local${req.url ?? '/'}`);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers))
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  const contentType = headers['content-type'] ?? '';
  const isText = body.length === 0 || TEXT_TYPES.test(contentType);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    queryStringParameters: url.search ? Object.fromEntries(url.searchParams) : undefined,
    headers,
    isBase64Encoded: !isText,
    body: body.length === 0 ? undefined : isText ? body.toString('utf8') : body.toString('base64'),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '',
        userAgent: headers['user-agent'] ?? '',
      },
    },
  };
}

type BodyRead = { body: Buffer } | { tooLarge: true; received: number };

function readBody(req: http.IncomingMessage): Promise<BodyRead> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REQUEST_BYTES) {
      resolve({ tooLarge: true, received: 0 });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        chunks.length = 0;
        req.off('data', onData);
        req.pause();
        resolve({ tooLarge: true, received: size });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => resolve({ body: Buffer.concat(chunks) }));
    req.on('error', reject);
  });
}

/**
 * Sends the whole 413 at once but ends the response only when the request has
 * been read to its end: Node closes a `connection: close` response's socket as
 * soon as the response ends, and closing with unread bytes in the socket makes
 * the kernel reset the connection, losing the 413 for a client still sending.
 */
function refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse, received: number): void {
  const { statusCode, headers, body } = errorResult(bodyTooLarge(MAX_REQUEST_BYTES));
  res.writeHead(statusCode, { ...headers, 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.write(body);
  let discarded = received;
  const cut = () => {
    clearTimeout(timer);
    req.off('data', count);
    res.end();
    req.socket.destroy();
  };
  const timer = setTimeout(cut, DISCARD_LIMIT_MS);
  const count = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) cut();
  };
  req.on('data', count);
  req.once('end', () => {
    clearTimeout(timer);
    res.end();
  });
  req.once('error', cut);
  req.socket.once('close', () => clearTimeout(timer));
  req.resume();
}

function send(res: http.ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const body =
    result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  res.writeHead(result.statusCode ?? 200, result.headers as http.OutgoingHttpHeaders);
  res.end(body);
}

/** Builds the request listener: every request becomes one handler call. */
export function httpListener(handler: LambdaLike, onError: (error: unknown) => void): http.RequestListener {
  return async (req, res) => {
    const requestId = randomUUID();
    try {
      const read = await readBody(req);
      if ('tooLarge' in read) {
        refuseTooLarge(req, res, read.received);
        return;
      }
      send(res, await handler(toEvent(req, read.body, requestId), { awsRequestId: requestId }));
    } catch (error) {
      onError(error);
      if (!res.headersSent) {
        send(res, internalError(requestId));
      } else res.destroy();
    }
  };
}

export async function serveHandler(
  handler: LambdaLike,
  options: { host: string; port: number; onError: (error: unknown) => void },
): Promise<ServedHandler> {
  // Node's 5 s keep-alive closes a connection under a client that was busy for 5 s (training a model between two
  // requests, say) and still holds it as open: its next POST fails ("other side closed"), and a POST is not retried.
  // A silent connection may already stay 60 s before its headers time out, so a longer keep-alive costs nothing new.
  const server = http.createServer({ keepAliveTimeout: 65_000 }, httpListener(handler, options.onError));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
