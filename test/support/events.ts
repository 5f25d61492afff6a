/** API Gateway HTTP API (v2) events for calling handlers directly. */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';

export function apiEvent(
  method: string,
  path: string,
  options: {
    body?: string | Buffer;
    contentType?: string;
    headers?: Record<string, string>;
    query?: Record<string, string>;
  } = {},
): APIGatewayProxyEventV2 {
  const binary = Buffer.isBuffer(options.body);
  const headers: Record<string, string> = { ...options.headers };
  if (options.contentType) headers['content-type'] = options.contentType;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: new URLSearchParams(options.query).toString(),
    ...(options.query ? { queryStringParameters: options.query } : {}),
    headers,
    isBase64Encoded: binary,
    body:
      options.body === undefined
        ? undefined
        : binary
          ? (options.body as Buffer).toString('base64')
          : (options.body as string),
    requestContext: {
      accountId: 'test',
      apiId: 'test',
      domainName: 'test',
      domainPrefix: 'test',
      requestId: 'req-test',
      routeKey: '$default',
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
      http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
    },
  };
}

export const postJson = (path: string, body: unknown) =>
  apiEvent('POST', path, {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    contentType: 'application/json',
  });
