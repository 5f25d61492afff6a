/**
 * Live traffic for tests: capture records written by the real
 * BucketCaptureSink and feedback sent through the real POST /feedback app,
 * so what the readers see is what the stack stores.
 */
import assert from 'node:assert/strict';
import { BucketCaptureSink } from '#lib/live/capture-sink';
import { type Alternative, type CaptureRecord, encodeInput, newPredictionId, SCHEMA } from '#lib/live/records';
import { createLogger } from '#lib/log';
import { MNIST_CLASSES, MNIST_PIXELS } from '#lib/mnist-shape';
import type { ObjectStore } from '#lib/storage/objects';
import { makeFeedbackHandler } from '../../functions/feedback/app.ts';
import { postJson } from './events.ts';

export interface Answer {
  version: string;
  digit: number;
  confidence: number;
  at: Date;
  /** What the user says: the right digit, or that the answer was right. */
  feedback?: { label: number } | { correct: true };
  /** The 28×28 input as stored (base64 of 784 bytes); a blank frame if unset. */
  input?: string;
  /** The other version's answer to the same input, while a candidate runs. */
  alternative?: Alternative;
  /** 3.5 ms if unset. */
  latencyMs?: number;
}

const silent = createLogger({}, () => {});

/** A valid capture: `confidence` on the answered digit, the rest spread evenly. */
export function captureRecord(answer: Answer, predictionId = newPredictionId(answer.at)): CaptureRecord {
  const rest = (1 - answer.confidence) / (MNIST_CLASSES - 1);
  return {
    type: 'capture',
    schema: SCHEMA,
    predictionId,
    time: answer.at.toISOString(),
    modelVersion: answer.version,
    digit: answer.digit,
    confidence: answer.confidence,
    probabilities: Array.from({ length: MNIST_CLASSES }, (_, d) => (d === answer.digit ? answer.confidence : rest)),
    input: answer.input ?? encodeInput(new Float32Array(MNIST_PIXELS)),
    format: 'png',
    latencyMs: answer.latencyMs ?? 3.5,
    ...(answer.alternative ? { alternative: answer.alternative } : {}),
  };
}

/** Stores the answers as captures and their feedback as POST /feedback would; resolves with the prediction ids. */
export async function writeTraffic(objects: ObjectStore, answers: Answer[]): Promise<string[]> {
  const sink = new BucketCaptureSink(objects, {
    maxRecords: 10_000,
    flushSeconds: 3600,
    writerId: 'test',
    logger: silent,
  });
  const records = answers.map((answer) => captureRecord(answer));
  for (const record of records) sink.write(record);
  await sink.flush();
  const feedback = makeFeedbackHandler({ objects, logger: silent, throttle: () => {} });
  for (const [i, answer] of answers.entries()) {
    if (!answer.feedback) continue;
    const result = await feedback(
      postJson('/feedback', { predictionId: records[i]!.predictionId, ...answer.feedback }),
    );
    assert.equal(result.statusCode, 200, String(result.body));
  }
  return records.map((r) => r.predictionId);
}
