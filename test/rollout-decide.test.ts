/** The rollout policy's decisions, case by case: every branch, and its reason. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  type Alarm,
  DEFAULT_POLICY,
  type Decision,
  decide,
  type PairFigures,
  type PointerState,
} from '#lib/rollout/decide';

const NOW = new Date('2026-12-03T12:00:00Z');
const HOURS_AGO = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString();
const SERVING = '20261201T000000Z-mlp';
const CANDIDATE = '20261202T000000Z-cnn';
const PREVIOUS = '20261130T000000Z-mlp';

const pointer = (overrides: Partial<PointerState> = {}): PointerState => ({
  serving: SERVING,
  previous: PREVIOUS,
  changedAt: HOURS_AGO(2),
  ...overrides,
});
const canary = { version: CANDIDATE, mode: 'canary' as const, percent: 50, since: HOURS_AGO(2) };
const shadow = { version: CANDIDATE, mode: 'shadow' as const, since: HOURS_AGO(2) };
const pair = (overrides: Partial<PairFigures> = {}): PairFigures => ({
  samples: 1000,
  agreement: 0.99,
  labelled: 80,
  candidateAccuracy: 0.95,
  servingAccuracy: 0.94,
  ...overrides,
});

const cases: { name: string; pointer: PointerState; pair?: PairFigures; alarms?: Alarm[]; expect: Decision }[] = [
  {
    name: 'a pinned pointer is never changed, whatever the alarms say',
    pointer: pointer({ pinned: true, candidate: canary }),
    alarms: [{ name: 'Api5xx', state: 'ALARM' }],
    expect: { action: 'wait', reason: `${SERVING} is pinned by an operator` },
  },
  {
    name: 'nothing changes within the cool-down after a pointer change',
    pointer: pointer({ changedAt: HOURS_AGO(0.25), candidate: canary }),
    pair: pair(),
    expect: { action: 'wait', reason: 'cooling down: the pointer changed 15 min ago (30 min)' },
  },
  {
    name: 'a canary is dropped when the service alarms while it answers traffic',
    pointer: pointer({ candidate: canary }),
    pair: pair(),
    alarms: [
      { name: 'Api5xx', state: 'ALARM' },
      { name: 'Drift', state: 'OK' },
    ],
    expect: {
      action: 'drop-candidate',
      version: CANDIDATE,
      reason: `Api5xx in ALARM while ${CANDIDATE} was the canary candidate`,
    },
  },
  {
    name: "a shadow answers nobody: the service's alarms do not count against it",
    pointer: pointer({ candidate: shadow }),
    pair: pair({ samples: 10 }),
    alarms: [{ name: 'Api5xx', state: 'ALARM' }],
    expect: { action: 'wait', reason: '10 of 500 shared predictions so far' },
  },
  {
    name: "the candidate's own alarm drops it, shadow or canary",
    pointer: pointer({ candidate: shadow }),
    pair: pair(),
    alarms: [{ name: 'LowConfidence', state: 'ALARM', version: CANDIDATE }],
    expect: {
      action: 'drop-candidate',
      version: CANDIDATE,
      reason: `LowConfidence in ALARM while ${CANDIDATE} was the shadow candidate`,
    },
  },
  {
    name: 'no judgement before enough shared predictions',
    pointer: pointer({ candidate: canary }),
    expect: { action: 'wait', reason: '0 of 500 shared predictions so far' },
  },
  {
    name: 'a candidate worse than the tolerance on labelled inputs is dropped',
    pointer: pointer({ candidate: canary }),
    pair: pair({ candidateAccuracy: 0.9, servingAccuracy: 0.94 }),
    expect: {
      action: 'drop-candidate',
      version: CANDIDATE,
      reason: `${CANDIDATE} is 90.0% on 80 labelled inputs, more than 1.0% below ${SERVING} (94.0%)`,
    },
  },
  {
    name: 'a candidate within the tolerance on labelled inputs is promoted',
    pointer: pointer({ candidate: canary }),
    pair: pair({ candidateAccuracy: 0.935, servingAccuracy: 0.94, agreement: 0.9 }),
    expect: {
      action: 'promote',
      version: CANDIDATE,
      reason: `${CANDIDATE} is 93.5% on 80 labelled inputs against 94.0% for ${SERVING}, agreeing on 90.0% of 1000`,
    },
  },
  {
    name: 'with too few labels, high agreement promotes',
    pointer: pointer({ candidate: shadow }),
    pair: pair({ labelled: 10, agreement: 0.985 }),
    expect: {
      action: 'promote',
      version: CANDIDATE,
      reason: `${CANDIDATE} agrees with ${SERVING} on 98.5% of 1000 inputs (at least 97.0%), and too few labels (10) say otherwise`,
    },
  },
  {
    name: 'with too few labels, low agreement waits for labels',
    pointer: pointer({ candidate: shadow }),
    pair: pair({ labelled: 10, agreement: 0.9 }),
    expect: {
      action: 'wait',
      reason: `${CANDIDATE} agrees on only 90.0% of 1000 inputs; 10 of 50 labelled inputs needed to judge which is right`,
    },
  },
  {
    name: 'labels without an accuracy on one side fall back on agreement',
    pointer: pointer({ candidate: shadow }),
    pair: pair({ candidateAccuracy: null }),
    expect: {
      action: 'promote',
      version: CANDIDATE,
      reason: `${CANDIDATE} agrees with ${SERVING} on 99.0% of 1000 inputs (at least 97.0%), and too few labels (80) say otherwise`,
    },
  },
  {
    name: 'a newly promoted version that alarms is rolled back to the one before it',
    pointer: pointer(),
    alarms: [{ name: 'PredictP99', state: 'ALARM' }],
    expect: {
      action: 'rollback',
      from: SERVING,
      to: PREVIOUS,
      reason: `PredictP99 in ALARM 120 min after ${SERVING} was promoted`,
    },
  },
  {
    name: 'past the watch window an alarm is for people, not for an automatic rollback',
    pointer: pointer({ changedAt: HOURS_AGO(48) }),
    alarms: [{ name: 'PredictP99', state: 'ALARM' }],
    expect: { action: 'wait', reason: 'no candidate, and nothing wrong with the serving version' },
  },
  {
    name: 'with nothing before it there is nothing to roll back to',
    pointer: pointer({ previous: undefined }),
    alarms: [{ name: 'Api5xx', state: 'ALARM' }],
    expect: { action: 'wait', reason: 'no candidate, and nothing wrong with the serving version' },
  },
  {
    name: "another version's alarm and alarms without data change nothing",
    pointer: pointer(),
    alarms: [
      { name: 'LowConfidence', state: 'ALARM', version: PREVIOUS },
      { name: 'Api5xx', state: 'INSUFFICIENT_DATA' },
    ],
    expect: { action: 'wait', reason: 'no candidate, and nothing wrong with the serving version' },
  },
];

describe('the rollout decision', () => {
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        decide({ now: NOW, pointer: c.pointer, pair: c.pair, alarms: c.alarms ?? [], policy: DEFAULT_POLICY }),
        c.expect,
      );
    });
  }
});
