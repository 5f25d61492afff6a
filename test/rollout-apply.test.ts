import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '#lib/log';
import { applyRollout } from '#lib/rollout/apply';
import { type Alarm, DEFAULT_POLICY, type RolloutPolicy } from '#lib/rollout/decide';
import type { AuditRecord } from '#lib/storage/audit';
import type { ObjectStore } from '#lib/storage/objects';
import { LATEST_KEY, ModelStore } from '#lib/storage/store';
import { testBucket } from './support/env.ts';
import { type Answer, writeTraffic } from './support/live.ts';
import { startRolloutTimer } from '../scripts/local/rollout-timer.ts';
import { storeTrainedModel } from './support/service.ts';

const silent = createLogger({}, () => {});
const POLICY: RolloutPolicy = { ...DEFAULT_POLICY, minSamples: 20, minLabelled: 10, minAgreement: 0.9 };
// Feedback is accepted only for recent predictions, so the story happens in the last few hours.
const NOW = new Date();
const ago = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);

/** A bucket with a serving version promoted three hours ago and a candidate (another version) set two hours ago. */
async function withCandidate(candidate: { mode: 'shadow' } | { mode: 'canary'; percent: number }) {
  const bucket = await testBucket();
  const store = new ModelStore(bucket.objects);
  const serving = await storeTrainedModel(store);
  const version = await storeTrainedModel(store);
  await store.promote(serving, { now: ago(180) });
  await store.setCandidate({ version, ...candidate }, { now: ago(120) });
  return { bucket, store, serving, candidate: version };
}

/** `n` inputs answered by `answered` with `digit`, the other version's answer beside it, and the user's label if any. */
function pairTraffic(
  n: number,
  answered: string,
  digit: number,
  other: string,
  otherDigit: number,
  label?: number,
): Answer[] {
  return Array.from({ length: n }, (_, i) => ({
    version: answered,
    digit,
    confidence: 0.9,
    at: ago(60 - i / 10),
    alternative: { modelVersion: other, digit: otherDigit, confidence: 0.9 },
    ...(label === undefined ? {} : { feedback: { label } }),
  }));
}

const run = (objects: ObjectStore, alarms: Alarm[] = []) =>
  applyRollout({ objects, alarms: async () => alarms, policy: POLICY, logger: silent, now: () => NOW });

describe('applyRollout on the embedded S3', () => {
  test('promotes a shadow that agrees on enough captures, and records it as the schedule', async () => {
    const { bucket, store, serving, candidate } = await withCandidate({ mode: 'shadow' });
    await writeTraffic(bucket.objects, pairTraffic(25, serving, 3, candidate, 3));
    const outcome = await run(bucket.objects);
    assert.deepEqual([outcome.action, outcome.applied], ['promote', true]);
    const pointer = await store.latest();
    assert.deepEqual([pointer?.version, pointer?.previous, pointer?.candidate], [candidate, serving, undefined]);
    const record = (await store.history()).at(-1) as AuditRecord;
    assert.deepEqual(
      [record.actor, record.action, record.from, record.to],
      ['schedule', 'promote', serving, candidate],
    );
    assert.equal(record.reason, outcome.reason);
    assert.match(record.reason ?? '', /agrees with .* on 100\.0% of 25 inputs/);
  });

  test('drops a canary that is wrong where the serving version is right, and records it as a rollback', async () => {
    const { bucket, store, serving, candidate } = await withCandidate({ mode: 'canary', percent: 50 });
    await writeTraffic(bucket.objects, [
      ...pairTraffic(12, candidate, 5, serving, 3, 3),
      ...pairTraffic(12, serving, 3, candidate, 5, 3),
    ]);
    const outcome = await run(bucket.objects);
    assert.deepEqual([outcome.action, outcome.applied], ['drop-candidate', true]);
    const pointer = await store.latest();
    assert.deepEqual([pointer?.version, pointer?.candidate], [serving, undefined]);
    const record = (await store.history()).at(-1) as AuditRecord;
    assert.deepEqual([record.actor, record.action], ['rollback', 'clear-candidate']);
    assert.equal(record.candidate?.from?.version, candidate);
    assert.match(record.reason ?? '', new RegExp(`${candidate} is 0\\.0% on 24 labelled inputs`));
  });

  test('rolls back to the previous version when an alarm fires soon after a promotion', async () => {
    const bucket = await testBucket();
    const store = new ModelStore(bucket.objects);
    const older = await storeTrainedModel(store);
    const newer = await storeTrainedModel(store);
    await store.promote(older, { now: ago(300) });
    await store.promote(newer, { now: ago(60) });
    const outcome = await run(bucket.objects, [{ name: 'digitnet-dev-Errors', state: 'ALARM' }]);
    assert.deepEqual([outcome.action, outcome.applied], ['rollback', true]);
    assert.equal((await store.latest())?.version, older);
    const record = (await store.history()).at(-1) as AuditRecord;
    assert.deepEqual([record.actor, record.action, record.reason], ['rollback', 'rollback', outcome.reason]);
  });

  test('leaves a pinned pointer alone, however good the candidate', async () => {
    const { bucket, store, serving, candidate } = await withCandidate({ mode: 'shadow' });
    await store.setPinned(true, { now: ago(100) });
    await writeTraffic(bucket.objects, pairTraffic(25, serving, 3, candidate, 3));
    const before = await store.pointerState();
    const outcome = await run(bucket.objects, [{ name: 'digitnet-dev-Errors', state: 'ALARM' }]);
    assert.deepEqual(outcome, { action: 'wait', reason: `${serving} is pinned by an operator`, applied: false });
    assert.equal((await store.pointerState()).etag, before.etag);
  });

  test('does not overwrite a pointer changed between its read and its write; says so and changes nothing', async () => {
    const { bucket, store, serving, candidate } = await withCandidate({ mode: 'shadow' });
    await writeTraffic(bucket.objects, pairTraffic(25, serving, 3, candidate, 3));
    let raced = false;
    // An operator's change lands just before the decision's write.
    const racing: ObjectStore = Object.assign(Object.create(bucket.objects), {
      put: async (...args: Parameters<ObjectStore['put']>) => {
        if (args[0] === LATEST_KEY && !raced) {
          raced = true;
          await store.clearCandidate({ now: ago(1) });
        }
        return bucket.objects.put(...args);
      },
    });
    const outcome = await run(racing);
    assert.deepEqual([outcome.action, outcome.applied], ['promote', false]);
    const pointer = await store.latest();
    assert.deepEqual([pointer?.version, pointer?.candidate], [serving, undefined]);
    assert.equal(((await store.history()).at(-1) as AuditRecord).actor, 'operator');
  });

  test('a pointer written before changedAt was recorded cools down from its promotion time', async () => {
    const bucket = await testBucket();
    const store = new ModelStore(bucket.objects);
    const version = await storeTrainedModel(store);
    const legacy = { version, promotedAt: ago(10).toISOString(), accuracy: 0.9, arch: 'mlp' };
    await bucket.objects.put(LATEST_KEY, JSON.stringify(legacy), 'application/json');
    const outcome = await run(bucket.objects, [{ name: 'digitnet-dev-Errors', state: 'ALARM' }]);
    assert.deepEqual(outcome, {
      action: 'wait',
      reason: 'cooling down: the pointer changed 10 min ago (30 min)',
      applied: false,
    });
  });

  test('waits, writing nothing, when nothing serves yet', async () => {
    const bucket = await testBucket();
    assert.deepEqual(await run(bucket.objects), {
      action: 'wait',
      reason: 'no version is serving yet',
      applied: false,
    });
    assert.deepEqual(await bucket.objects.list(''), []);
  });
});

describe("npm start's rollout timer", () => {
  /** A logger that resolves `seen(message)` once a line with that message is logged. */
  function watchingLogger() {
    const waiting = new Map<string, () => void>();
    const messages: string[] = [];
    const logger = createLogger(
      {},
      (line) => {
        const { message } = JSON.parse(line) as { message: string };
        messages.push(message);
        waiting.get(message)?.();
      },
      'debug',
    );
    const seen = (message: string) =>
      messages.includes(message) ? Promise.resolve() : new Promise<void>((resolve) => waiting.set(message, resolve));
    return { logger, seen, messages };
  }

  test('applies the policy on its own, carries on after a failed run, and stops cleanly', async () => {
    const { bucket, store, serving, candidate } = await withCandidate({ mode: 'shadow' });
    await writeTraffic(bucket.objects, pairTraffic(25, serving, 3, candidate, 3));
    let failures = 1;
    const flaky: ObjectStore = Object.assign(Object.create(bucket.objects), {
      getIfChanged: async (...args: Parameters<ObjectStore['getIfChanged']>) => {
        if (failures-- > 0) throw new Error('storage hiccup');
        return bucket.objects.getIfChanged(...args);
      },
    });
    const { logger, seen, messages } = watchingLogger();
    const timer = startRolloutTimer({ objects: flaky, policy: POLICY, intervalSeconds: 0.01, logger });
    await seen('rollout: promote');
    await timer.stop();
    assert.ok(
      messages.indexOf('rollout: the run failed; the next one tries again') < messages.indexOf('rollout: promote'),
    );
    assert.equal((await store.latest())?.version, candidate);
  });
});
