import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareVersions } from '#lib/live/comparison';
import type { LabelledCapture } from '#lib/live/read';
import type { CaptureRecord, FeedbackRecord } from '#lib/live/records';
import { wilsonInterval } from '#lib/live/summary';
import { captureRecord } from './support/live.ts';

const SERVING = '20261201T000000Z-mlp';
const CANDIDATE = '20261202T000000Z-cnn';
const DELETED = '20261101T000000Z-mlp';
const at = new Date(Date.UTC(2026, 11, 3, 9));

/** A capture answered by `by` with `digit`, the other version having said `otherDigit`. */
function pair(by: string, digit: number, otherDigit: number): CaptureRecord {
  const other = by === SERVING ? CANDIDATE : SERVING;
  return captureRecord({
    version: by,
    digit,
    confidence: 0.9,
    at,
    alternative: { modelVersion: other, digit: otherDigit, confidence: 0.8 },
  });
}

function labelled(capture: CaptureRecord, label: number): LabelledCapture {
  const base = { type: 'feedback', schema: 1, predictionId: capture.predictionId, time: at.toISOString() } as const;
  const feedback: FeedbackRecord = label === capture.digit ? { ...base, correct: true } : { ...base, label };
  return { capture, feedback, label };
}

describe('compareVersions', () => {
  // Serving answered 10 (7 agreed), the canary 4 (3 agreed); five of them labelled.
  const bothSay3 = pair(SERVING, 3, 3);
  const onlyCandidateRight = pair(SERVING, 1, 7);
  const onlyServingRight = pair(SERVING, 4, 9);
  const canaryRightServingWrong = pair(CANDIDATE, 5, 6);
  const canaryAgreed = pair(CANDIDATE, 8, 8);
  const captures = [
    bothSay3,
    onlyCandidateRight,
    onlyServingRight,
    ...Array.from({ length: 6 }, (_, i) => pair(SERVING, i, i)),
    pair(SERVING, 2, 0),
    canaryRightServingWrong,
    canaryAgreed,
    pair(CANDIDATE, 0, 0),
    pair(CANDIDATE, 9, 9),
  ];
  const unpaired = captureRecord({ version: SERVING, digit: 2, confidence: 0.9, at });
  const ofDeleted = captureRecord({
    version: SERVING,
    digit: 2,
    confidence: 0.9,
    at,
    alternative: { modelVersion: DELETED, digit: 3, confidence: 0.5 },
  });
  const data = {
    captures: [...captures, unpaired, ofDeleted],
    labelled: [
      labelled(bothSay3, 3),
      labelled(onlyCandidateRight, 7),
      labelled(onlyServingRight, 4),
      labelled(canaryRightServingWrong, 5),
      labelled(canaryAgreed, 8),
      labelled(unpaired, 2),
      labelled(ofDeleted, 3),
    ],
  };

  test('counts agreement on every paired input and scores both versions on each labelled one', () => {
    const score = (version: string, answered: number, correct: number) => {
      const interval = wilsonInterval(correct, 5)!;
      return { version, answered, correct, accuracy: correct / 5, low: interval.low, high: interval.high };
    };
    assert.deepEqual(compareVersions(data, [SERVING, CANDIDATE]), [
      {
        versions: [SERVING, CANDIDATE],
        compared: 14,
        agreed: 10,
        agreement: 10 / 14,
        feedback: 5,
        scores: [score(SERVING, 10, 3), score(CANDIDATE, 4, 4)],
      },
    ]);
  });

  test('a pair naming a version the bucket does not hold is left out, as the summaries leave it out', () => {
    const held = compareVersions(data, [DELETED, SERVING, CANDIDATE]);
    assert.deepEqual(
      held.map((c) => [c.versions, c.compared]),
      [
        [[DELETED, SERVING], 1],
        [[SERVING, CANDIDATE], 14],
      ],
    );
    assert.deepEqual(compareVersions(data, [SERVING]), []);
  });

  test('without feedback the accuracies are null and agreement still counts', () => {
    const [comparison] = compareVersions({ captures, labelled: [] }, [SERVING, CANDIDATE]);
    assert.equal(comparison?.agreed, 10);
    assert.deepEqual(
      comparison?.scores.map((s) => [s.accuracy, s.low, s.high]),
      [
        [null, null, null],
        [null, null, null],
      ],
    );
  });

  test('captures without an alternative compare nothing', () => {
    assert.deepEqual(compareVersions({ captures: [unpaired], labelled: [labelled(unpaired, 2)] }, [SERVING]), []);
  });
});
