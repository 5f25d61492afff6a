/**
 * POST /feedback: a user's word on one answer, `{"predictionId", "label": 0–9}`
 * or `{"predictionId", "correct": true}`. Stored under the prediction's own
 * date as `feedback/dt=…/<predictionId>.json`, one object per id, so a second
 * answer replaces the first. The route never reads captures: feedback for an
 * id that was never captured is kept out later, where captures and feedback
 * are joined (`functions/lib/live/`).
 */
import { BadRequestError } from '#lib/errors';
import { fieldError, json, readJsonObject, router, serve, type Handler } from '#lib/http';
import type { Logger } from '#lib/log';
import type { Metrics } from '#lib/metrics';
import { feedbackKey, type FeedbackRecord, isPredictionId, predictionTime, SCHEMA } from '#lib/live/records';
import type { ObjectStore } from '#lib/storage/objects';

export interface FeedbackDeps {
  objects: Pick<ObjectStore, 'put'>;
  logger: Logger;
  /** Throws TooManyRequestsError when the caller must slow down. */
  throttle: () => void;
  now?: () => Date;
  /** FeedbackLabels and FeedbackConfirmations, one per stored answer; unset records none. */
  metrics?: Metrics;
}

/** A feedback body is under 100 bytes; this leaves room for whitespace and nothing else. */
export const MAX_BODY_BYTES = 1024;

const RULES = {
  maxBytes: MAX_BODY_BYTES,
  fields: ['predictionId', 'label', 'correct'],
  example: '{"predictionId": "…", "label": 7} or {"predictionId": "…", "correct": true}',
} as const;

/** Ids are stamped by the server's clock; one from further ahead than this was not issued by it. */
const CLOCK_SKEW_MS = 5 * 60_000;

export function parseFeedbackRequest(raw: { body?: string; isBase64Encoded?: boolean }, now: Date): FeedbackRecord {
  const body = readJsonObject(raw, RULES);
  const { predictionId, label, correct } = body;
  if (!isPredictionId(predictionId) || predictionTime(predictionId) > now.getTime() + CLOCK_SKEW_MS) {
    throw fieldError('predictionId', 'the predictionId of an answer from POST /predict', predictionId);
  }
  const base = { type: 'feedback', schema: SCHEMA, predictionId, time: now.toISOString() } as const;
  if (label !== undefined && correct !== undefined) {
    throw new BadRequestError('send either "label" (the right digit) or "correct": true, not both', 'invalid_feedback');
  }
  if (correct !== undefined) {
    if (correct !== true) throw fieldError('correct', 'true (to say which digit it was, send "label")', correct);
    return { ...base, correct };
  }
  if (!Number.isInteger(label) || (label as number) < 0 || (label as number) > 9) {
    throw fieldError('label', 'the right digit, a whole number from 0 to 9 (or send "correct": true)', label);
  }
  return { ...base, label: label as number };
}

export function makeFeedbackHandler(deps: FeedbackDeps): Handler {
  const now = deps.now ?? (() => new Date());
  return serve(
    deps.logger,
    router({
      '/feedback': {
        POST: async (event, _log, _params, metrics) => {
          deps.throttle();
          const record = parseFeedbackRequest(event, now());
          await deps.objects.put(feedbackKey(record.predictionId), JSON.stringify(record), 'application/json');
          const label = 'label' in record;
          metrics.add(label ? 'FeedbackLabels' : 'FeedbackConfirmations', 1, 'Count');
          return json(200, { predictionId: record.predictionId, recorded: label ? 'label' : 'correct' });
        },
      },
    }),
    { metrics: deps.metrics },
  );
}
