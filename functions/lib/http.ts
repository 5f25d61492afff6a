/**
 * The HTTP edge every API here shares: the result type, JSON responses, one
 * router (404, and 405 with `Allow`), one JSON body reader (size cap, field
 * whitelist), and the one place errors become responses — typed errors keep
 * their status and code; anything else is a 500 with a generic body and the
 * details only in the log.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import {
  AppError,
  BadRequestError,
  NotFoundError,
  PayloadTooLargeError,
  TooManyRequestsError,
  UnauthorizedError,
  UnavailableError,
} from './errors.ts';
import type { Logger } from './log.ts';
import { type MetricSet, type Metrics, noMetrics } from './metrics.ts';

export type Result = APIGatewayProxyStructuredResultV2 & {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
};
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

/** A typed error as the caller sees it: its status, its code and message, and the headers its status calls for. */
export function errorResult(error: AppError): Result {
  const headers: Record<string, string> = {};
  if (
    (error instanceof UnavailableError || error instanceof TooManyRequestsError) &&
    error.retryAfterSeconds !== undefined
  )
    headers['retry-after'] = String(error.retryAfterSeconds);
  if (error instanceof MethodNotAllowedError) headers.allow = error.allow;
  if (error instanceof UnauthorizedError) headers['www-authenticate'] = error.scheme;
  return json(error.status, { error: { code: error.code, message: error.message } }, headers);
}

export function toErrorResponse(error: unknown, logger: Logger, requestId: string): Result {
  if (error instanceof AppError) {
    if (error.status >= 500) logger.error('request failed', { status: error.status, code: error.code, error });
    return errorResult(error);
  }
  logger.error('unexpected error', { error });
  return internalError(requestId);
}

const INTERNAL_ERROR = 'internal_error';

/** What a caller sees of an unexpected error: the request id to quote, nothing of the error itself. */
export const internalError = (requestId: string) =>
  json(500, { error: { code: INTERNAL_ERROR, message: `internal error (request ${requestId})` } });

export function requestLine(event: APIGatewayProxyEventV2): { method: string; path: string } {
  return { method: event.requestContext?.http?.method?.toUpperCase() ?? 'GET', path: event.rawPath || '/' };
}

/** `metrics` is the request's: what a route adds leaves in the request's one metrics line. */
export type Route = (
  event: APIGatewayProxyEventV2,
  log: Logger,
  params: Record<string, string>,
  metrics: MetricSet,
) => Promise<Result>;
export type Router = (event: APIGatewayProxyEventV2, log: Logger, metrics: MetricSet) => Promise<Result>;
/** A path's handlers by HTTP method (upper case). */
export type Methods = Partial<Record<string, Route>>;
/** Paths as API Gateway writes them (`/train/{jobId}`), each to its methods. */
export type Routes = Record<string, Methods>;

/** `{name}` matches one non-empty path segment, as in an API Gateway route key. */
function pathPattern(template: string): RegExp {
  const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, '(?<$1>[^/]+)');
  return new RegExp(`^${source}$`);
}

/** Whether one of these route paths answers a request's path, whatever the method. */
export function pathMatcher(templates: readonly string[]): (path: string) => boolean {
  const patterns = templates.map(pathPattern);
  return (path) => patterns.some((pattern) => pattern.test(path));
}

/** Finds the route for a request: 404 `route_not_found` when no path matches, 405 with `Allow` when the method does not. */
export function router(routes: Routes): Router {
  const table = Object.entries(routes).map(([template, methods]) => ({ pattern: pathPattern(template), methods }));
  return async (event, log, metrics) => {
    const { method, path } = requestLine(event);
    for (const { pattern, methods } of table) {
      const match = pattern.exec(path);
      if (!match) continue;
      const run = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (!run) throw new MethodNotAllowedError(Object.keys(methods).join(', '));
      return run(event, log, { ...match.groups }, metrics);
    }
    throw new NotFoundError(`no route for ${method} ${path}`, 'route_not_found');
  };
}

export interface RawBody {
  body?: string | undefined;
  isBase64Encoded?: boolean | undefined;
}

/** How many bytes a base64 text decodes to, counted from its length rather than by decoding it. */
export function base64Bytes(base64: string): number {
  const padding = base64.endsWith('==') ? 2 : base64.endsWith('=') ? 1 : 0;
  return Math.floor((base64.length * 3) / 4) - padding;
}

/** The body's size as the caller sent it. */
export function bodyBytes(raw: RawBody): number {
  if (raw.body === undefined) return 0;
  return raw.isBase64Encoded ? base64Bytes(raw.body) : Buffer.byteLength(raw.body);
}

export const bodyTooLarge = (maxBytes: number) =>
  new PayloadTooLargeError(`the request body is over ${maxBytes} bytes`, 'body_too_large');

export interface JsonBodyRules {
  maxBytes: number;
  /** The only fields the object may have. */
  fields: readonly string[];
  /** A valid body, quoted in the messages for an empty or non-object body. */
  example: string;
}

/** 400 `empty_body` for no body, 413 `body_too_large` over the cap; checked before anything is decoded. */
export function checkBody<T extends RawBody>(
  raw: T,
  rules: Pick<JsonBodyRules, 'maxBytes' | 'example'>,
): asserts raw is T & { body: string } {
  if (!raw.body) throw new BadRequestError(`the request body is empty: send ${rules.example}`, 'empty_body');
  if (bodyBytes(raw) > rules.maxBytes) throw bodyTooLarge(rules.maxBytes);
}

/** Field names echoed in a message are cut short: a caller's field name is not worth a megabyte of error. */
const quoteField = (name: string) => `"${name.length > 32 ? `${name.slice(0, 32)}…` : name}"`;

/**
 * A JSON object body with only the allowed fields, or a 400: `invalid_json`,
 * `invalid_body` (JSON, but not an object) or `unknown_field`. Whatever the
 * fields hold is the caller's to check, with `fieldError`.
 */
export function readJsonObject(raw: RawBody, rules: JsonBodyRules): Record<string, unknown> {
  checkBody(raw, rules);
  const text = raw.isBase64Encoded ? Buffer.from(raw.body, 'base64').toString('utf8') : raw.body;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError('the body is not valid JSON', 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError(`the body must be a JSON object such as ${rules.example}`, 'invalid_body');
  }
  const unknown = Object.keys(value).filter((key) => !rules.fields.includes(key));
  if (unknown.length > 0) {
    const names = unknown.slice(0, 5).map(quoteField).join(', ');
    const fields = `unknown field${unknown.length > 1 ? 's' : ''} ${names}`;
    throw new BadRequestError(`${fields}; allowed: ${rules.fields.join(', ')}`, 'unknown_field');
  }
  return value as Record<string, unknown>;
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * A field that is missing (400 `missing_field`) or holds the wrong thing (400
 * `invalid_<field in snake case>`), saying what it got.
 */
export function fieldError(name: string, expected: string, value: unknown): BadRequestError {
  if (value === undefined) return new BadRequestError(`"${name}" is missing: it must be ${expected}`, 'missing_field');
  return new BadRequestError(`"${name}" must be ${expected}; got ${describe(value)}`, `invalid_${snake(name)}`);
}

/**
 * What a caller sent, in a few words and never by serialising it: a body may
 * hold JSON nested thousands deep, which JSON.stringify cannot walk.
 */
function describe(value: unknown): string {
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'string') return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);
  return String(value);
}

export interface ServeOptions {
  /** Fields added to every access-log line. */
  logFields?: () => Record<string, unknown>;
  metrics?: Metrics;
}

/**
 * Wraps a router: a request id on every response and log line, errors mapped
 * in one place, one access-log line per request, and at most one metrics line:
 * what the route recorded, Errors by code for an error response, ColdStart on
 * the handler's first request.
 */
export function serve(logger: Logger, route: Router, options: ServeOptions = {}): Handler {
  const { logFields = () => ({}), metrics = noMetrics } = options;
  let cold = true;
  return async (event, context) => {
    const requestId = context?.awsRequestId ?? event.requestContext?.requestId ?? 'local';
    const { method, path } = requestLine(event);
    const log = logger.child({ requestId });
    const started = performance.now();
    const recorded = metrics.begin();
    if (cold) recorded.add('ColdStart', 1, 'Count');
    cold = false;
    let result: Result;
    try {
      result = await route(event, log, recorded);
    } catch (error) {
      result = toErrorResponse(error, log, requestId);
      recorded.add('Errors', 1, 'Count', { code: error instanceof AppError ? error.code : INTERNAL_ERROR });
    }
    recorded.flush(log);
    result.headers['x-request-id'] = requestId;
    log.info('request', {
      method,
      path,
      status: result.statusCode,
      ms: Math.round((performance.now() - started) * 100) / 100,
      ...logFields(),
    });
    return result;
  };
}
