/**
 * The prediction API as a function of its dependencies: API Gateway HTTP API
 * (v2) event in, structured result out. `handler.ts` wires the real ones for
 * Lambda; the local server and the tests build their own.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { classify, type Prediction } from '#lib/classify';
import { NotFoundError } from '#lib/errors';
import { json, router, serve, type Handler, type Result, type Routes } from '#lib/http';
import type { Logger } from '#lib/log';
import { type MetricSet, type Metrics, NOT_DIGIT_METRICS } from '#lib/metrics';
import type { CandidateModel, ModelCache, ServingModel } from '#lib/model-cache';
import { parsePredictRequest, type DigitRequest, type NumberRequest, type PredictInput } from '#lib/predict-request';
import { EmptyImageError } from '#lib/image/mnist-transform';
import { preprocessImage, preprocessNumber, preprocessPixels } from '#lib/image/preprocess';
import { digitVerdict, NO_INK, type Verdict, type VerdictReason } from '#lib/verdict';
import type { CaptureSink } from '#lib/live/capture-sink';
import type { LiveView } from '#lib/live/stored';
import { type CaptureRecord, captureRecord, encodeInput, type InputFormat, newPredictionId } from '#lib/live/records';
import { answeredByCandidate } from '#lib/rollout/canary';

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
  /** How many digits the image's layout holds (segmentation's count); 1 for pixels. */
  marks: number;
}

/** The model input, or undefined when the image has no ink: that is an answer (no_ink), not an error. */
async function toModelInput(input: PredictInput): Promise<ModelInput | undefined> {
  if (input.kind === 'pixels') return { input: preprocessPixels(input.pixels), format: 'pixels', marks: 1 };
  try {
    const { input: pixels, format, marks } = await preprocessImage(input.bytes);
    return { input: pixels, format, marks };
  } catch (error) {
    if (error instanceof EmptyImageError) return undefined;
    throw error;
  }
}

/** The verdict's fields as an answer carries them: only `isDigit` when it is one. */
const verdictFields = (verdict: Verdict) =>
  verdict.isDigit ? { isDigit: true } : { isDigit: false, reason: verdict.reason, message: verdict.message };

/** An image with no ink: nothing was predicted, so no digit, no probabilities and no prediction id. */
const NO_INK_ANSWER = { digit: null, confidence: null, probabilities: null, ...verdictFields(NO_INK) };

const toBytes = (input: Float32Array) => Array.from(input, (v) => Math.round(v * 255));

/** Both /health and /model say when the promoted version would not load and its predecessor serves instead. */
const fallbackOf = (serving: ServingModel) => (serving.fallback ? { fallback: serving.fallback } : {});

/** Both /health and /model name the pointer's candidate, and whether this process has it loaded and running. */
function candidateOf(serving: ServingModel, cache: ModelCache, failures: CandidateFailures) {
  const wanted = serving.pointer.candidate;
  const state = cache.candidateState();
  if (!wanted || !state) return {};
  const { version, mode, since } = wanted;
  return {
    candidate: {
      version,
      mode,
      ...(wanted.mode === 'canary' ? { percent: wanted.percent } : {}),
      since,
      state,
      failures: failures.version === version ? failures.count : 0,
    },
  };
}

/** One version's answers to a request's inputs. */
interface Answers {
  version: string;
  answers: Prediction[];
}

/** Requests on which this process's candidate threw, counted per candidate version. */
interface CandidateFailures {
  version?: string;
  count: number;
}

function modelSummary(serving: ServingModel, live: LiveView | null, candidate: ReturnType<typeof candidateOf>) {
  const { metrics, pointer } = serving;
  return {
    modelVersion: serving.version,
    ...fallbackOf(serving),
    ...candidate,
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

/** An answer as the caller gets it, before the fields of its mode. */
type Answered = Prediction & { predictionId: string };

/** Each sampled prediction as a capture record, with the other version's answer while a candidate runs. */
function captureAll(
  capture: NonNullable<AppDeps['capture']>,
  request: {
    predictions: Answered[];
    inputs: ModelInput[];
    /** Per prediction: the verdict (digit mode), or its place in the number (number mode). */
    extra: (i: number) => Pick<CaptureRecord, 'isDigit' | 'reason' | 'part'>;
    modelVersion: string;
    other: Answers | undefined;
    started: number;
  },
): void {
  const { predictions, inputs, extra, modelVersion, other, started } = request;
  const random = capture.random ?? Math.random;
  const time = new Date().toISOString();
  const latencyMs = Math.round((performance.now() - started) * 100) / 100;
  predictions.forEach(({ predictionId, digit, confidence, probabilities }, i) => {
    if (random() >= capture.sampleRate) return;
    const { input, format } = inputs[i]!;
    const record = { predictionId, time, modelVersion, digit, confidence, probabilities, format, latencyMs };
    const alternative = other && {
      modelVersion: other.version,
      digit: other.answers[i]!.digit,
      confidence: other.answers[i]!.confidence,
    };
    capture.sink.write(
      captureRecord({ ...record, input: encodeInput(input), ...extra(i), ...(alternative ? { alternative } : {}) }),
    );
  });
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
  const failures: CandidateFailures = { count: 0 };

  const lowConfidence = deps.metrics?.lowConfidenceThreshold ?? 0;

  /**
   * What a successful POST /predict records: its latency, by answering version the count, confidence and
   * low-confidence answers, and the answers that are not a digit, in all and by reason.
   */
  function recordMetrics(
    metrics: MetricSet,
    answered: { predictions: Prediction[]; notDigit: VerdictReason[]; modelVersion: string; latencyMs: number },
  ): void {
    const { predictions, notDigit, modelVersion, latencyMs } = answered;
    const confidences = predictions.reduce((sum, p) => sum + p.confidence, 0);
    const low = predictions.filter((p) => p.confidence < lowConfidence).length;
    const byVersion = { modelVersion };
    metrics
      .add('Latency', latencyMs, 'Milliseconds')
      .add('Predictions', predictions.length, 'Count', byVersion)
      .add('Confidence', confidences / predictions.length, 'None', byVersion)
      .add('LowConfidence', low, 'Count', byVersion)
      .add('NotDigit', notDigit.length, 'Count');
    for (const reason of new Set(notDigit))
      metrics.add(NOT_DIGIT_METRICS[reason], notDigit.filter((r) => r === reason).length, 'Count');
  }

  /** The candidate's answers, or undefined when it throws: a candidate never decides whether a request succeeds. */
  function tryCandidate(candidate: CandidateModel, inputs: Float32Array[], log: Logger): Answers | undefined {
    try {
      return { version: candidate.version, answers: classify(candidate.model, inputs) };
    } catch (error) {
      if (failures.version !== candidate.version) Object.assign(failures, { version: candidate.version, count: 0 });
      failures.count++;
      // Logged on the 1st, 2nd, 4th, 8th… failure: a candidate that always throws must not flood the log.
      if ((failures.count & (failures.count - 1)) === 0)
        log.error('the candidate failed; answered without it', {
          error,
          candidateVersion: candidate.version,
          failures: failures.count,
        });
      return undefined;
    }
  }

  /** The serving version's answers, and the candidate's beside them, or answering instead in a canary's share. */
  async function answer(
    pixels: Float32Array[],
    body: string | undefined,
    log: Logger,
  ): Promise<{ answer: Answers; other: Answers | undefined }> {
    const serving = await servingModel();
    // A batch of blank images asks the model nothing.
    const served: Answers = { version: serving.version, answers: pixels.length ? classify(serving.model, pixels) : [] };
    // The candidate runs after the serving answer exists, so its failure can only ever cost its own answer.
    const { candidate } = serving;
    const tried = candidate && pixels.length ? tryCandidate(candidate, pixels, log) : undefined;
    return candidate && tried && answeredByCandidate(candidate, body)
      ? { answer: tried, other: served }
      : { answer: served, other: tried };
  }

  const answeredOf = (p: Prediction, input: Float32Array, includeInput: boolean): Answered => ({
    ...p,
    predictionId: predictionId(),
    ...(includeInput ? { input: toBytes(input) } : {}),
  });

  /** One digit per input; each answer says whether its input looks like one handwritten digit. */
  async function readDigits(
    request: DigitRequest,
    event: APIGatewayProxyEventV2,
    log: Logger,
    metrics: MetricSet,
    started: number,
  ) {
    const seen = await Promise.all(request.inputs.map(toModelInput));
    const inputs = seen.filter((input): input is ModelInput => input !== undefined);
    const { answer: answered, other } = await answer(
      inputs.map((i) => i.input),
      event.body,
      log,
    );
    const verdicts = answered.answers.map((p, i) =>
      digitVerdict({ input: inputs[i]!.input, probabilities: p.probabilities, marks: inputs[i]!.marks }),
    );
    const predictions = answered.answers.map((p, i) => answeredOf(p, inputs[i]!.input, request.includeInput));
    const modelVersion = answered.version;
    if (capture) {
      const extra = (i: number) => {
        const verdict = verdicts[i]!;
        return verdict.isDigit ? { isDigit: true } : { isDigit: false, reason: verdict.reason };
      };
      captureAll(capture, { predictions, inputs, extra, modelVersion, other, started });
    }
    let next = 0;
    const answers = seen.map((input) => {
      if (input === undefined) return NO_INK_ANSWER;
      const i = next++;
      return { ...predictions[i]!, ...verdictFields(verdicts[i]!) };
    });
    const notDigit = [
      ...seen.filter((input) => input === undefined).map(() => 'no_ink' as const),
      ...verdicts.flatMap((v) => (v.isDigit ? [] : [v.reason])),
    ];
    recordMetrics(metrics, { predictions, notDigit, modelVersion, latencyMs: performance.now() - started });
    return json(200, request.batch ? { predictions: answers, modelVersion } : { ...answers[0], modelVersion });
  }

  /** One image read left to right as a number: each digit an answer of its own, with its box in the image. */
  async function readNumber(
    request: NumberRequest,
    event: APIGatewayProxyEventV2,
    log: Logger,
    metrics: MetricSet,
    started: number,
  ) {
    const { parts, format } = await preprocessNumber(request.bytes);
    const inputs: ModelInput[] = parts.map((part) => ({ input: part.input, format, marks: 1 }));
    const { answer: answered, other } = await answer(
      inputs.map((i) => i.input),
      event.body,
      log,
    );
    const predictions = answered.answers.map((p, i) => answeredOf(p, inputs[i]!.input, request.includeInput));
    const modelVersion = answered.version;
    if (capture) {
      const extra = (i: number) => ({ part: { index: i, of: parts.length } });
      captureAll(capture, { predictions, inputs, extra, modelVersion, other, started });
    }
    const digits = predictions.map((p, i) => ({ ...p, box: parts[i]!.box }));
    const confidence = Math.round(predictions.reduce((product, p) => product * p.confidence, 1) * 1e6) / 1e6;
    metrics.add('Numbers', 1, 'Count');
    recordMetrics(metrics, { predictions, notDigit: [], modelVersion, latencyMs: performance.now() - started });
    return json(200, { number: digits.map((d) => d.digit).join(''), confidence, digits, modelVersion });
  }

  async function predict(
    event: APIGatewayProxyEventV2,
    log: Logger,
    _params: Record<string, string>,
    metrics: MetricSet,
  ): Promise<Result> {
    const started = performance.now();
    const request = parsePredictRequest({
      body: event.body,
      isBase64Encoded: event.isBase64Encoded,
      contentType: event.headers?.['content-type'] ?? event.headers?.['Content-Type'],
      mode: event.queryStringParameters?.mode,
    });
    return request.mode === 'number'
      ? readNumber(request, event, log, metrics, started)
      : readDigits(request, event, log, metrics, started);
  }

  async function health(): Promise<Result> {
    const serving = await servingModel();
    return json(200, {
      status: serving.fallback ? 'degraded' : 'ok',
      modelVersion: serving.version,
      ...fallbackOf(serving),
      ...candidateOf(serving, cache, failures),
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
        const live = (await deps.live?.(serving.version)) ?? null;
        return json(200, modelSummary(serving, live, candidateOf(serving, cache, failures)));
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
