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
import type { MetricSet, Metrics } from '#lib/metrics';
import type { ModelCache, ServingModel } from '#lib/model-cache';
import { parsePredictRequest, type PredictInput } from '#lib/predict-request';
import { preprocessImage, preprocessPixels } from '#lib/image/preprocess';
import type { CaptureSink } from '#lib/live/capture-sink';
import type { LiveView } from '#lib/live/stored';
import { captureRecord, encodeInput, type InputFormat, newPredictionId } from '#lib/live/records';

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
  /** Where each prediction is recorded, and which share of them; unset records nothing. */
  capture?: { sink: CaptureSink; sampleRate: number; random?: () => number };
  /** A version's live accuracy (`models/<version>/live.json`), read for GET /model only; null when it has none. */
  live?: (version: string) => Promise<LiveView | null>;
  predictionId?: () => string;
  /**
   * CloudWatch metrics (functions/lib/metrics.ts); unset records none. An
   * answer below `lowConfidenceThreshold` counts as LowConfidence.
   */
  metrics?: { sink: Metrics; lowConfidenceThreshold: number };
}

interface ModelInput {
  input: Float32Array;
  format: InputFormat;
}

async function toModelInput(input: PredictInput): Promise<ModelInput> {
  if (input.kind === 'pixels') return { input: preprocessPixels(input.pixels), format: 'pixels' };
  const { input: pixels, format } = await preprocessImage(input.bytes);
  return { input: pixels, format };
}

const toBytes = (input: Float32Array) => Array.from(input, (v) => Math.round(v * 255));

/** Both /health and /model say when the promoted version would not load and its predecessor serves instead. */
const fallbackOf = (serving: ServingModel) => (serving.fallback ? { fallback: serving.fallback } : {});

function modelSummary(serving: ServingModel, live: LiveView | null) {
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
    live,
  };
}

export function makeHandler(deps: AppDeps): Handler {
  const { cache, logger } = deps;

  /** The cache waits for the backend itself before building, so a cold start fetches the model meanwhile. */
  async function servingModel(): Promise<ServingModel> {
    const [, serving] = await Promise.all([deps.backendReady(), cache.get()]);
    return serving;
  }

  const predictionId = deps.predictionId ?? (() => newPredictionId());
  const capture = deps.capture;
  const random = capture?.random ?? Math.random;

  const lowConfidence = deps.metrics?.lowConfidenceThreshold ?? 0;

  async function predict(
    event: APIGatewayProxyEventV2,
    _log: Logger,
    _params: Record<string, string>,
    metrics: MetricSet,
  ): Promise<Result> {
    const started = performance.now();
    const request = parsePredictRequest({
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      contentType: event.headers?.['content-type'] ?? event.headers?.['Content-Type'],
    });
    const inputs = await Promise.all(request.inputs.map(toModelInput));
    const serving = await servingModel();
    const modelVersion = serving.version;
    const predictions = classify(
      serving.model,
      inputs.map((i) => i.input),
    ).map((p, i) => ({
      ...p,
      predictionId: predictionId(),
      ...(request.includeInput ? { input: toBytes(inputs[i]!.input) } : {}),
    }));
    if (capture) {
      const time = new Date().toISOString();
      const latencyMs = Math.round((performance.now() - started) * 100) / 100;
      predictions.forEach(({ predictionId, digit, confidence, probabilities }, i) => {
        if (random() >= capture.sampleRate) return;
        const { input, format } = inputs[i]!;
        const record = { predictionId, time, modelVersion, digit, confidence, probabilities, format, latencyMs };
        capture.sink.write(captureRecord({ ...record, input: encodeInput(input) }));
      });
    }
    let confidences = 0;
    let low = 0;
    for (const { confidence } of predictions) {
      confidences += confidence;
      if (confidence < lowConfidence) low++;
    }
    const byVersion = { modelVersion };
    metrics
      .add('Latency', performance.now() - started, 'Milliseconds')
      .add('Predictions', predictions.length, 'Count', byVersion)
      .add('Confidence', confidences / predictions.length, 'None', byVersion)
      .add('LowConfidence', low, 'Count', byVersion);
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
    '/model': {
      GET: async () => {
        const serving = await servingModel();
        return json(200, modelSummary(serving, (await deps.live?.(serving.version)) ?? null));
      },
    },
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

  return serve(logger, router(routes), {
    logFields: () => ({ modelVersion: cache.peek()?.version }),
    metrics: deps.metrics?.sink,
  });
}
