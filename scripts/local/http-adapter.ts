/**
 * Serves a Lambda handler over plain HTTP the way API Gateway's HTTP API (v2)
 * would call it: same event shape, binary bodies base64-encoded, a request id
 * per call. Only for the local stack; in the cloud API Gateway does this.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

export type LambdaLike = (event: APIGatewayProxyEventV2, context: { awsRequestId: string }) => Promise<APIGatewayProxyStructuredResultV2>;

/** Matches API Gateway's own payload cap; larger bodies are refused while still streaming in. */
export const MAX_REQUEST_BYTES = 10 * 1024 * 1024;
const TEXT_TYPES = /^(application\/json|text\/|application\/x-www-form-urlencoded)/i;

export interface ServedHandler {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

function toEvent(req: http.IncomingMessage, body: Buffer, requestId: string): APIGatewayProxyEventV2 {
  // Prefixed rather than resolved: '//predict' must stay a path, not become a host.
  const url = new URL('http://local' + (req.url ?? '/'));
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
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

function readBody(req: http.IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_REQUEST_BYTES) {
      req.resume();
      resolve('too-large');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        chunks.length = 0;
        req.removeAllListeners('data');
        req.resume();
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const body = result.body === undefined ? '' : result.isBase64Encoded ? Buffer.from(result.body, 'base64') : result.body;
  res.writeHead(result.statusCode ?? 200, result.headers as http.OutgoingHttpHeaders);
  res.end(body);
}

/** Builds the request listener: every request becomes one handler call. */
export function httpListener(handler: LambdaLike, onError: (error: unknown) => void): http.RequestListener {
  return async (req, res) => {
    const requestId = randomUUID();
    try {
      const body = await readBody(req);
      if (body === 'too-large') {
        send(res, {
          statusCode: 413,
          headers: { 'content-type': 'application/json; charset=utf-8', connection: 'close' },
          body: JSON.stringify({ error: { code: 'body_too_large', message: `the request body is over ${MAX_REQUEST_BYTES} bytes` } }),
        });
        return;
      }
      send(res, await handler(toEvent(req, body, requestId), { awsRequestId: requestId }));
    } catch (error) {
      onError(error);
      if (!res.headersSent) {
        send(res, { statusCode: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: { code: 'internal_error', message: `internal error (request ${requestId})` } }) });
      } else res.destroy();
    }
  };
}

export async function serveHandler(handler: LambdaLike, options: { host: string; port: number; onError: (error: unknown) => void }): Promise<ServedHandler> {
  const server = http.createServer({ keepAliveTimeout: 5_000 }, httpListener(handler, options.onError));
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
