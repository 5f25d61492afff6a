/**
 * What every API Gateway handler here shares: the result type, JSON
 * responses, and the one place errors become responses — typed errors keep
 * their status and code; anything else is a 500 with a generic body and the
 * details only in the log.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { AppError, UnavailableError } from './errors.ts';
import type { Logger } from './log.ts';

export type Result = APIGatewayProxyStructuredResultV2 & { statusCode: number; headers: Record<string, string> };
export type Handler = (event: APIGatewayProxyEventV2, context?: Pick<Context, 'awsRequestId'>) => Promise<Result>;

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): Result {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

export class MethodNotAllowedError extends AppError {
  constructor(readonly allow: string) {
    super(405, 'method_not_allowed', `use ${allow} on this path`);
  }
}

export function toErrorResponse(error: unknown, logger: Logger, requestId: string): Result {
  if (error instanceof AppError) {
    if (error.status >= 500) logger.error('request failed', { status: error.status, code: error.code, error });
    const headers: Record<string, string> = {};
    if (error instanceof UnavailableError && error.retryAfterSeconds !== undefined) headers['retry-after'] = String(error.retryAfterSeconds);
    if (error instanceof MethodNotAllowedError) headers.allow = error.allow;
    return json(error.status, { error: { code: error.code, message: error.message } }, headers);
  }
  logger.error('unexpected error', { error });
  return json(500, { error: { code: 'internal_error', message: `internal error (request ${requestId})` } });
}

/**
 * Wraps a router: a request id on every response and log line, errors mapped
 * in one place, one access-log line per request.
 */
export function serve(logger: Logger, route: (event: APIGatewayProxyEventV2, log: Logger) => Promise<Result>, logFields: () => Record<string, unknown> = () => ({})): Handler {
  return async (event, context) => {
    const requestId = context?.awsRequestId ?? event.requestContext?.requestId ?? 'local';
    const method = event.requestContext?.http?.method?.toUpperCase() ?? 'GET';
    const path = event.rawPath || '/';
    const log = logger.child({ requestId });
    const started = performance.now();
    let result: Result;
    try {
      result = await route(event, log);
    } catch (error) {
      result = toErrorResponse(error, log, requestId);
    }
    result.headers['x-request-id'] = requestId;
    log.info('request', { method, path, status: result.statusCode, ms: Math.round((performance.now() - started) * 100) / 100, ...logFields() });
    return result;
  };
}
