/**
 * The prediction API as a function of its dependencies: API Gateway HTTP API
 * (v2) event in, structured result out. `handler.ts` wires the real ones for
 * Lambda; the local server and the tests build their own.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { classify } from '#lib/classify';
import { NotFoundError } from '#lib/errors';
import { json, router, serve, type Handler, type Result, type Routes } from '#lib/http';
import type { Logger } from '#lib/log';
import type { ModelCache, ServingModel } from '#lib/model-cache';
import { parsePredictRequest, type PredictInput } from '#lib/predict-request';
import { preprocessImage, preprocessPixels } from '#lib/image/preprocess';

export type { Handler, Result };

export interface AppDeps {
  cache: ModelCache;
  logger: Logger;
  /**
   * Resolves once the tfjs backend is ready; awaited before answering. Give
   * the cache the same function so it waits for it only before building the
   * model, not before fetching it.
   */
  backendReady: () => Promise<unknown>;
  /** The web page's HTML. */
  page: () => Promise<string>;
  /** A version's stored HTML report, if it has one. */
  report?: (version: string) => Promise<Buffer | undefined>;
}

async function toModelInput(input: PredictInput): Promise<Float32Array> {
  return input.kind === 'pixels' ? preprocessPixels(input.pixels) : (await preprocessImage(input.bytes)).input;
}

const toBytes = (input: Float32Array) => Array.from(input, (v) => Math.round(v * 255));

/** Both /health and /model say when the promoted version would not load and its predecessor serves instead. */
const fallbackOf = (serving: ServingModel) => (serving.fallback ? { fallback: serving.fallback } : {});

function modelSummary(serving: ServingModel) {
  const { metrics, pointer } = serving;
  return {
    modelVersion: serving.version,
    ...fallbackOf(serving),
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

  /** The cache waits for the backend itself before building, so a cold start fetches the model meanwhile. */
  async function servingModel(): Promise<ServingModel> {
    const [, serving] = await Promise.all([deps.backendReady(), cache.get()]);
    return serving;
  }

  async function predict(event: APIGatewayProxyEventV2): Promise<Result> {
    const request = parsePredictRequest({
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      contentType: event.headers?.['content-type'] ?? event.headers?.['Content-Type'],
    });
    const inputs = await Promise.all(request.inputs.map(toModelInput));
    const serving = await servingModel();
    const predictions = classify(serving.model, inputs).map((p, i) =>
      request.includeInput ? { ...p, input: toBytes(inputs[i]!) } : p,
    );
    const modelVersion = serving.version;
    return json(200, request.batch ? { predictions, modelVersion } : { ...predictions[0], modelVersion });
  }

  async function health(): Promise<Result> {
    const serving = await servingModel();
    return json(200, {
      status: serving.fallback ? 'degraded' : 'ok',
      modelVersion: serving.version,
      ...fallbackOf(serving),
    });
  }

  async function report(): Promise<Result> {
    const serving = await servingModel();
    const html = await deps.report?.(serving.version);
    if (!html) throw new NotFoundError(`model ${serving.version} has no stored report`);
    return {
      statusCode: 200,
      headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
      body: html.toString('utf8'),
    };
  }

  const routes: Routes = {
    '/predict': { POST: predict },
    '/model': { GET: async () => json(200, modelSummary(await servingModel())) },
    '/model/report': { GET: report },
    '/health': { GET: health },
    '/': {
      GET: async () => ({
        statusCode: 200,
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
        body: await deps.page(),
      }),
    },
  };

  return serve(logger, router(routes), () => ({ modelVersion: cache.peek()?.version }));
}
