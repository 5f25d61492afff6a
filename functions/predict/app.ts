/**
 * The prediction API as a function of its dependencies: API Gateway HTTP API
 * (v2) event in, structured result out. `handler.ts` wires the real ones for
 * Lambda; the local server and the tests build their own.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { classify } from '#lib/classify';
import { AppError, NotFoundError, UnavailableError } from '#lib/errors';
import type { Logger } from '#lib/log';
import type { ModelCache, ServingModel } from '#lib/model-cache';
import { parsePredictRequest, type PredictInput } from '#lib/predict-request';
import { preprocessImage, preprocessPixels } from '#lib/preprocess';

export type Result = APIGatewayProxyStructuredResultV2 & { statusCode: number; headers: Record<string, string> };
export type Handler = (event: APIGatewayProxyEventV2, context?: Pick<Context, 'awsRequestId'>) => Promise<Result>;

export interface AppDeps {
  cache: ModelCache;
  logger: Logger;
  /** Resolves once the tfjs backend is ready; awaited before the first model load. */
  backendReady: () => Promise<unknown>;
  /** The web page's HTML. */
  page: () => Promise<string>;
  /** A version's stored HTML report, if it has one. */
  report?: (version: string) => Promise<Buffer | undefined>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): Result {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

class MethodNotAllowedError extends AppError {
  constructor(readonly allow: string) {
    super(405, 'method_not_allowed', `use ${allow} on this path`);
  }
}

/** The one place errors become responses: typed errors keep their status; anything else is a bare 500. */
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

async function toModelInput(input: PredictInput): Promise<Float32Array> {
  return input.kind === 'pixels' ? preprocessPixels(input.pixels) : (await preprocessImage(input.bytes)).input;
}

const toBytes = (input: Float32Array) => Array.from(input, (v) => Math.round(v * 255));

function modelSummary(serving: ServingModel) {
  const { metrics, pointer } = serving;
  return {
    modelVersion: serving.version,
    arch: metrics.arch,
    params: metrics.params,
    createdAt: metrics.createdAt,
    promotedAt: pointer.promotedAt,
    backend: metrics.backend,
    training: {
      epochs: metrics.training.epochs,
      batchSize: metrics.training.batchSize,
      secondsPerEpoch: metrics.training.secondsPerEpoch,
      history: metrics.training.history,
    },
    test: {
      accuracy: metrics.test.accuracy,
      loss: metrics.test.loss,
      count: metrics.test.count,
      confusion: metrics.test.confusion,
      perClass: metrics.test.perClass,
    },
  };
}

export function makeHandler(deps: AppDeps): Handler {
  const { cache, logger } = deps;

  async function servingModel(): Promise<ServingModel> {
    await deps.backendReady();
    return cache.get();
  }

  async function predict(event: APIGatewayProxyEventV2): Promise<Result> {
    const request = parsePredictRequest({
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      contentType: event.headers?.['content-type'] ?? event.headers?.['Content-Type'],
    });
    const inputs = await Promise.all(request.inputs.map(toModelInput));
    const serving = await servingModel();
    const predictions = classify(serving.model, inputs).map((p, i) => (request.includeInput ? { ...p, input: toBytes(inputs[i]!) } : p));
    const modelVersion = serving.version;
    return json(200, request.batch ? { predictions, modelVersion } : { ...predictions[0], modelVersion });
  }

  async function health(): Promise<Result> {
    const serving = await servingModel();
    return json(200, { status: 'ok', modelVersion: serving.version });
  }

  async function report(): Promise<Result> {
    const serving = await servingModel();
    const html = await deps.report?.(serving.version);
    if (!html) throw new NotFoundError(`model ${serving.version} has no stored report`);
    return { statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }, body: html.toString('utf8') };
  }

  const routes: Record<string, Record<string, (event: APIGatewayProxyEventV2) => Promise<Result>>> = {
    '/predict': { POST: predict },
    '/model': { GET: async () => json(200, modelSummary(await servingModel())) },
    '/model/report': { GET: report },
    '/health': { GET: health },
    '/': {
      GET: async () => ({ statusCode: 200, headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }, body: await deps.page() }),
    },
  };

  return async (event, context) => {
    const requestId = context?.awsRequestId ?? event.requestContext?.requestId ?? 'local';
    const method = event.requestContext?.http?.method?.toUpperCase() ?? 'GET';
    const path = event.rawPath || '/';
    let log = logger.child({ requestId });
    const started = performance.now();
    let result: Result;
    try {
      const route = routes[path];
      if (!route) throw new NotFoundError(`no route for ${method} ${path}`, 'route_not_found');
      const run = route[method];
      if (!run) throw new MethodNotAllowedError(Object.keys(route).join(', '));
      result = await run(event);
    } catch (error) {
      result = toErrorResponse(error, log, requestId);
    }
    const modelVersion = cache.peek()?.version;
    if (modelVersion) log = log.child({ modelVersion });
    result.headers['x-request-id'] = requestId;
    log.info('request', { method, path, status: result.statusCode, ms: Math.round((performance.now() - started) * 100) / 100 });
    return result;
  };
}
