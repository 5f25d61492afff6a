/**
 * Shadow and canary: the pointer's candidate, how it is set (store, POST
 * /promote, `npm run promote`), how the cache holds it, and what the predict
 * handler answers and captures while it runs. Real parts throughout: the
 * embedded S3, the trained test model, the handlers and the CLI.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { initBackend } from '#lib/backend';
import { ConflictError, PointerChangedError } from '#lib/errors';
import type { CaptureSink } from '#lib/live/capture-sink';
import { type CaptureRecord, parseCapture } from '#lib/live/records';
import { createLogger } from '#lib/log';
import { answeredByCandidate } from '#lib/rollout/canary';
import { LATEST_KEY, ModelStore } from '#lib/storage/store';
import { makeHandler as makeRetrainHandler } from '../functions/retrain/app.ts';
import { serveHandler } from '../scripts/local/http-adapter.ts';
import { localHandler } from '../scripts/local/routes.ts';
import { runScript } from './support/cli.ts';
import { tempDir, testBucket, testMnist } from './support/env.ts';
import { apiEvent, postJson } from './support/events.ts';
import { captureRecord } from './support/live.ts';
import { MemoryObjects } from './support/memory-objects.ts';
import { startService, storeTrainedModel, type TestService } from './support/service.ts';

before(() => initBackend());

const NOW = new Date('2026-12-03T10:00:00.000Z');
const silent = createLogger({}, () => {});
const parse = (body: unknown) => JSON.parse(String(body));

async function servingWithVersions(count: number) {
  const bucket = await testBucket();
  const store = new ModelStore(bucket.objects);
  const versions: string[] = [];
  for (let i = 0; i < count; i++) versions.push(await storeTrainedModel(store));
  await store.promote(versions[0]!);
  return { bucket, store, serving: versions[0]!, others: versions.slice(1) };
}

describe("the pointer's candidate", () => {
  const pointer = {
    version: '20261201T000000Z-mlp',
    promotedAt: '2026-12-01T00:00:00.000Z',
    accuracy: 0.98,
    arch: 'mlp',
  };
  const since = '2026-12-02T00:00:00.000Z';
  const read = async (candidate: unknown) => {
    const objects = new MemoryObjects();
    await objects.put(LATEST_KEY, JSON.stringify({ ...pointer, candidate }));
    const store = new ModelStore(objects);
    return { latest: await store.latest(), state: await store.pointerState() };
  };

  for (const [what, candidate] of [
    ['a shadow', { version: '20261202T000000Z-cnn', mode: 'shadow', since }],
    ['a 50% canary', { version: '20261202T000000Z-cnn', mode: 'canary', percent: 50, since }],
  ] as const) {
    test(`${what} is read with the pointer`, async () => {
      const { latest, state } = await read(candidate);
      assert.deepEqual(latest, { ...pointer, candidate });
      assert.equal(state.candidateInvalid, undefined);
    });
  }

  const good = { version: '20261202T000000Z-cnn', mode: 'canary', percent: 10, since };
  for (const [what, candidate, why] of [
    ['not an object', 'shadow', /is not an object/],
    ['a version that is a path', { ...good, version: '../x' }, /names no model version/],
    ['the serving version', { ...good, version: pointer.version }, /is the serving version/],
    ['an unknown mode', { ...good, mode: 'blue' }, /unknown mode "blue"/],
    ['a canary without percent', { ...good, percent: undefined }, /percent is not a whole number/],
    ['a canary at 0%', { ...good, percent: 0 }, /percent is not a whole number from 1 to 99/],
    ['a canary at 100%', { ...good, percent: 100 }, /percent is not a whole number/],
    ['a canary at 12.5%', { ...good, percent: 12.5 }, /percent is not a whole number/],
    ['a shadow with a percent', { ...good, mode: 'shadow' }, /is a shadow with a percent/],
    ['no since', { ...good, since: 'yesterday' }, /has no since time/],
  ] as const) {
    test(`${what} is left out, with the reason, and the serving version still reads`, async () => {
      const { latest, state } = await read(candidate);
      assert.deepEqual(latest, pointer);
      assert.deepEqual(state.pointer, pointer);
      assert.match(state.candidateInvalid ?? '', why);
      assert.match(state.candidateInvalid ?? '', /^models\/latest\.json's candidate /);
    });
  }
});

describe('setting and clearing the candidate in the store', () => {
  test('a shadow, then a canary of the same version: the serving fields stay, since is kept', async () => {
    const { store, serving, others } = await servingWithVersions(2);
    const before = await store.latest();
    const shadow = await store.setCandidate({ version: others[0]!, mode: 'shadow' }, { now: NOW });
    assert.deepEqual(shadow, {
      ...before,
      changedAt: NOW.toISOString(),
      candidate: { version: others[0], mode: 'shadow', since: NOW.toISOString() },
    });
    const later = new Date(NOW.getTime() + 60_000);
    const canary = await store.setCandidate({ version: others[0]!, mode: 'canary', percent: 20 }, { now: later });
    assert.deepEqual(canary.candidate, { version: others[0], mode: 'canary', percent: 20, since: NOW.toISOString() });
    assert.equal(canary.version, serving);
    assert.deepEqual(await store.latest(), canary);
  });

  test('promoting any version clears the candidate; clearing keeps the serving version', async () => {
    const { store, serving, others } = await servingWithVersions(3);
    await store.setCandidate({ version: others[0]!, mode: 'shadow' });
    const promoted = await store.promote(others[1]!);
    assert.equal(promoted.candidate, undefined);
    assert.equal(promoted.previous, serving);
    await store.setCandidate({ version: others[0]!, mode: 'canary', percent: 5 });
    const { candidate: _, ...withoutCandidate } = (await store.latest())!;
    const cleared = new Date(NOW.getTime() + 60_000);
    assert.deepEqual(await store.clearCandidate({ now: cleared }), {
      ...withoutCandidate,
      changedAt: cleared.toISOString(),
    });
    assert.deepEqual(await store.latest(), { ...withoutCandidate, changedAt: cleared.toISOString() });
  });

  test('clearing when there is no candidate writes nothing', async () => {
    const { bucket, store } = await servingWithVersions(1);
    const before = (await bucket.objects.get(LATEST_KEY))!.etag;
    await store.clearCandidate();
    assert.equal((await bucket.objects.get(LATEST_KEY))!.etag, before);
  });

  test('is refused for the serving version, with nothing serving, and on a stale basis', async () => {
    const { store, serving, others } = await servingWithVersions(2);
    await assert.rejects(
      store.setCandidate({ version: serving, mode: 'shadow' }),
      (error: unknown) => error instanceof ConflictError && error.code === 'candidate_is_serving',
    );
    const basis = await store.pointerState();
    await store.setCandidate({ version: others[0]!, mode: 'shadow' });
    await assert.rejects(store.clearCandidate({ basedOn: basis }), PointerChangedError);
    const empty = new ModelStore(new MemoryObjects());
    await assert.rejects(
      empty.clearCandidate(),
      (error: unknown) => error instanceof ConflictError && error.code === 'no_serving_version',
    );
  });
});

describe('POST /promote with a mode', () => {
  const noBatch = {
    submit: async () => assert.fail('not expected'),
    describe: async () => assert.fail('not expected'),
  };
  const handlerFor = (store: ModelStore) =>
    makeRetrainHandler({
      batch: noBatch,
      store,
      target: { jobQueue: 'q', jobDefinition: 'd' },
      logger: silent,
      now: () => NOW,
    });

  test('makes a version the shadow, then a canary, then clears it; each answer is the new pointer', async () => {
    const { store, serving, others } = await servingWithVersions(2);
    const handler = handlerFor(store);
    const candidate = others[0]!;
    const shadow = await handler(postJson('/promote', { version: candidate, mode: 'shadow' }));
    assert.equal(shadow.statusCode, 200, String(shadow.body));
    assert.deepEqual(parse(shadow.body).candidate, { version: candidate, mode: 'shadow', since: NOW.toISOString() });
    const canary = await handler(postJson('/promote', { version: candidate, mode: 'canary', percent: 25 }));
    assert.deepEqual(parse(canary.body), await store.latest());
    assert.equal(parse(canary.body).candidate.percent, 25);
    const cleared = await handler(postJson('/promote', { clearCandidate: true }));
    assert.equal(cleared.statusCode, 200);
    assert.deepEqual(parse(cleared.body), await store.latest());
    assert.equal(parse(cleared.body).candidate, undefined);
    assert.equal(parse(cleared.body).version, serving);
  });

  test('says when the quality gate refused the candidate, and sets it anyway', async () => {
    const { bucket, store, others } = await servingWithVersions(2);
    const key = `models/${others[0]}/metrics.json`;
    const metrics = parse((await bucket.objects.get(key))!.body);
    const gate = { passed: false, reasons: ['test accuracy 90.00% is below the mlp minimum of 97.50%'] };
    await bucket.objects.put(key, JSON.stringify({ ...metrics, gate }));
    const result = await handlerFor(store)(postJson('/promote', { version: others[0], mode: 'shadow' }));
    assert.equal(result.statusCode, 200);
    assert.deepEqual(parse(result.body).gate, gate);
    assert.equal((await store.latest())?.candidate?.version, others[0]);
  });

  let shared: Awaited<ReturnType<typeof servingWithVersions>>;
  before(async () => {
    shared = await servingWithVersions(2);
  });
  const version = () => shared.others[0]!;
  for (const [what, body, status, code] of [
    ['percent 0', () => ({ version: version(), mode: 'canary', percent: 0 }), 400, 'invalid_percent'],
    ['percent 100', () => ({ version: version(), mode: 'canary', percent: 100 }), 400, 'invalid_percent'],
    ["percent 'half'", () => ({ version: version(), mode: 'canary', percent: 'half' }), 400, 'invalid_percent'],
    ['percent 12.5', () => ({ version: version(), mode: 'canary', percent: 12.5 }), 400, 'invalid_percent'],
    ['a canary without percent', () => ({ version: version(), mode: 'canary' }), 400, 'missing_field'],
    ['a shadow with a percent', () => ({ version: version(), mode: 'shadow', percent: 5 }), 400, 'invalid_percent'],
    ['an unknown mode', () => ({ version: version(), mode: 'blue' }), 400, 'invalid_mode'],
    ['a mode without a version', () => ({ mode: 'shadow' }), 400, 'missing_field'],
    ['clearCandidate false', () => ({ clearCandidate: false }), 400, 'invalid_clear_candidate'],
    ['clearCandidate with a version', () => ({ clearCandidate: true, version: version() }), 400, 'invalid_request'],
    [
      'the serving version as candidate',
      () => ({ version: shared.serving, mode: 'shadow' }),
      409,
      'candidate_is_serving',
    ],
    ['an unknown version', () => ({ version: '20200101T000000Z-mlp', mode: 'shadow' }), 404, 'version_not_found'],
  ] as const) {
    test(`returns ${status} ${code} for ${what}, leaving the pointer alone`, async () => {
      const before = await shared.store.latest();
      const result = await handlerFor(shared.store)(postJson('/promote', body()));
      assert.equal(result.statusCode, status, String(result.body));
      assert.equal(parse(result.body).error.code, code);
      assert.deepEqual(await shared.store.latest(), before);
    });
  }

  test('returns 409 version_incomplete for a candidate whose weights no longer match', async () => {
    const { bucket, store, others } = await servingWithVersions(2);
    await bucket.objects.put(`models/${others[0]}/weights.bin`, Buffer.from('broken'));
    const result = await handlerFor(store)(postJson('/promote', { version: others[0], mode: 'shadow' }));
    assert.equal(result.statusCode, 409);
    assert.equal(parse(result.body).error.code, 'version_incomplete');
    assert.equal((await store.latest())?.candidate, undefined);
  });
});

describe('npm run promote with --shadow, --canary and --clear-candidate', () => {
  let env: NodeJS.ProcessEnv;
  let setup: Awaited<ReturnType<typeof servingWithVersions>>;
  let close: () => Promise<void>;
  after(() => close());

  before(async () => {
    setup = await servingWithVersions(2);
    const retrain = makeRetrainHandler({
      batch: { submit: async () => undefined, describe: async () => undefined },
      store: setup.store,
      target: { jobQueue: 'q', jobDefinition: 'd' },
      logger: silent,
    });
    const token = 'candidate-test-token';
    const served = await serveHandler(localHandler({ predict: retrain, feedback: retrain, operator: retrain, token }), {
      host: '127.0.0.1',
      port: 0,
      onError: () => {},
    });
    close = served.close;
    const dataDir = await tempDir('digitnet-candidate-cli-');
    await writeFile(path.join(dataDir, 'local-token'), `${token}\n`);
    env = { PATH: process.env.PATH, DATA_DIR: dataDir, DIGITNET_URL: served.url };
  });
  const promote = (args: string[]) => runScript('scripts/promote.ts', args, { env });

  test('--shadow, --canary P and --clear-candidate change the candidate and say so', async () => {
    const candidate = setup.others[0]!;
    const shadow = await promote([candidate, '--shadow']);
    assert.equal(shadow.code, 0, shadow.stderr);
    assert.equal(
      shadow.stderr,
      `${candidate} now runs as a shadow beside ${setup.serving}: on every request, never answering\n`,
    );
    assert.equal((await setup.store.latest())?.candidate?.mode, 'shadow');
    const canary = await promote([candidate, '--canary', '30']);
    assert.equal(canary.code, 0, canary.stderr);
    assert.equal(canary.stderr, `${candidate} now answers 30% of requests as a canary beside ${setup.serving}\n`);
    assert.deepEqual(JSON.parse(canary.stdout), await setup.store.latest());
    const cleared = await promote(['--clear-candidate']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(cleared.stderr, `no candidate now: ${setup.serving} answers every request\n`);
    assert.equal((await setup.store.latest())?.candidate, undefined);
  });

  test("a percent the API refuses: exit 1 with the API's reason", async () => {
    const result = await promote([setup.others[0]!, '--canary', 'half']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^not made the candidate: 400: "percent" must be a whole number from 1 to 99; got "half"$/m,
    );
    const zero = await promote([setup.others[0]!, '--canary', '0']);
    assert.match(zero.stderr, /got 0$/m);
    assert.equal((await setup.store.latest())?.candidate, undefined);
  });

  test('the serving version as candidate: exit 1, and it says why', async () => {
    const result = await promote([setup.serving, '--shadow']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /is the serving version; a candidate must be another one/);
  });

  test('--pin promotes and pins, --unpin alone unpins, --reason goes into the audit trail', async () => {
    const version = setup.others[0]!;
    const pinned = await promote([version, '--pin', '--reason', 'release freeze']);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.stderr, `${version} is now serving, pinned (was ${setup.serving})\n`);
    assert.equal((await setup.store.latest())?.pinned, true);
    const unpinned = await promote(['--unpin']);
    assert.equal(unpinned.code, 0, unpinned.stderr);
    assert.equal(unpinned.stderr, `${version} is no longer pinned: automatic decisions may change it again\n`);
    assert.equal((await setup.store.latest())?.pinned, undefined);
    const reasons = (await setup.store.history()).map((r) => ('reason' in r ? [r.action, r.reason] : r));
    assert.deepEqual(reasons.slice(-2), [
      ['promote', 'release freeze'],
      ['unpin', null],
    ]);
    await promote([setup.serving]);
  });

  test("a reason the API refuses: exit 1 with the API's reason", async () => {
    const result = await promote([setup.serving, '--reason', 'x'.repeat(501)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^not promoted: 400: "reason" must be one line of 1 to 500 characters/m);
  });

  for (const args of [
    ['--shadow'],
    ['V', '--shadow', '--canary', '5'],
    ['V', '--clear-candidate'],
    [],
    ['V', '--unpin'],
    ['V', '--shadow', '--pin'],
    ['--unpin', '--clear-candidate'],
    ['--pin'],
  ]) {
    test(`${JSON.stringify(args)} is a usage error (exit 2) that sends nothing`, async () => {
      const before = await setup.store.pointerState();
      const result = await promote(args);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /^Usage: npm run promote/);
      assert.equal((await setup.store.pointerState()).etag, before.etag);
    });
  }
});

/** Keeps what the handler captures, as the sinks would store it. */
function memorySink(): CaptureSink & { records: CaptureRecord[] } {
  const records: CaptureRecord[] = [];
  return { records, write: (record) => records.push(record), flush: async () => {} };
}

const mnist = testMnist();

describe('predictions while a candidate runs', async () => {
  let service: TestService;
  let candidate: string;
  const sink = memorySink();
  const { images } = (await mnist).test;
  const pixels = (i: number) => Array.from(images.subarray(i * 784, (i + 1) * 784));
  const body = (result: { body?: string }) => JSON.parse(String(result.body));
  /** 200 distinct inputs, and what the serving version alone answers to each. */
  const inputs = Array.from({ length: 200 }, (_, i) => postJson('/predict', { pixels: pixels(i) }));
  let alone: { digit: number; confidence: number; probabilities: number[]; modelVersion: string }[];

  const withoutId = ({ predictionId: _, ...rest }: Record<string, unknown>) => rest;
  const setCandidate = async (wanted: Parameters<ModelStore['setCandidate']>[0]) => {
    await service.store.setCandidate(wanted);
    await service.cache.refresh();
    await service.cache.candidateSettled();
  };

  before(async () => {
    service = await startService({ capture: { sink, sampleRate: 1 } });
    candidate = await storeTrainedModel(service.store);
    alone = [];
    for (const event of inputs) alone.push(withoutId(body(await service.handler(event))) as (typeof alone)[number]);
    sink.records.length = 0;
  });
  after(() => service.close());

  test('a shadow changes nothing the caller receives, and each capture carries its answer beside the serving one', async () => {
    await setCandidate({ version: candidate, mode: 'shadow' });
    for (const [i, event] of inputs.slice(0, 20).entries()) {
      assert.deepEqual(withoutId(body(await service.handler(event))), alone[i]);
    }
    assert.equal(sink.records.length, 20);
    for (const [i, record] of sink.records.entries()) {
      assert.equal(record.modelVersion, service.version);
      assert.deepEqual(record.alternative, {
        modelVersion: candidate,
        digit: alone[i]!.digit,
        confidence: alone[i]!.confidence,
      });
      assert.deepEqual(parseCapture(JSON.stringify(record)), record, 'the record reads back, alternative included');
    }
    const health = body(await service.handler(apiEvent('GET', '/health')));
    assert.deepEqual(health.candidate, {
      version: candidate,
      mode: 'shadow',
      since: (await service.store.latest())?.candidate?.since,
      state: 'ready',
      failures: 0,
    });
    assert.deepEqual(body(await service.handler(apiEvent('GET', '/model'))).candidate, health.candidate);
  });

  test('a 50% canary: the same body always gets the same version, about half go to the candidate, each named', async () => {
    sink.records.length = 0;
    await setCandidate({ version: candidate, mode: 'canary', percent: 50 });
    const pointer = (await service.store.latest())!;
    let byCandidate = 0;
    for (const [i, event] of inputs.entries()) {
      const answer = body(await service.handler(event));
      const expected = answeredByCandidate(pointer.candidate!, event.body) ? candidate : service.version;
      assert.equal(answer.modelVersion, expected);
      assert.equal(answer.digit, alone[i]!.digit);
      if (expected === candidate) byCandidate++;
    }
    // 200 fair coin flips land within 70–130 with probability 1 − 2e-5; the hash is fixed, so this never flickers.
    assert.ok(byCandidate >= 70 && byCandidate <= 130, `${byCandidate} of 200 went to the candidate`);
    for (const record of sink.records) {
      const other = record.modelVersion === candidate ? service.version : candidate;
      assert.equal(record.alternative?.modelVersion, other);
    }
    const retried = inputs.find((event) => answeredByCandidate(pointer.candidate!, event.body))!;
    for (let i = 0; i < 5; i++) assert.equal(body(await service.handler(retried)).modelVersion, candidate);
    assert.equal(body(await service.handler(apiEvent('GET', '/health'))).candidate.percent, 50);
  });

  test('a candidate that throws leaves every answer 200 and the serving one, counted and logged sparingly', async () => {
    await setCandidate({ version: candidate, mode: 'canary', percent: 99 });
    const loaded = (await service.cache.get()).candidate!;
    const predict = loaded.model.predict;
    loaded.model.predict = () => {
      throw new Error('injected candidate failure');
    };
    try {
      sink.records.length = 0;
      const logged = service.logs.length;
      for (const [i, event] of inputs.entries()) {
        const result = await service.handler(event);
        assert.equal(result.statusCode, 200);
        assert.deepEqual(withoutId(body(result)), alone[i]);
      }
      assert.ok(sink.records.every((r) => r.alternative === undefined && r.modelVersion === service.version));
      assert.equal(body(await service.handler(apiEvent('GET', '/health'))).candidate.failures, 200);
      const errors = service.logs
        .slice(logged)
        .filter((l) => l.message === 'the candidate failed; answered without it');
      assert.deepEqual(
        errors.map((l) => l.failures),
        [1, 2, 4, 8, 16, 32, 64, 128],
      );
    } finally {
      loaded.model.predict = predict;
    }
  });

  test('a candidate that will not load is dropped with a log line; answers are as if there were none', async () => {
    const broken = await storeTrainedModel(service.store);
    await service.store.setCandidate({ version: broken, mode: 'canary', percent: 99 });
    // Damaged after it was set (it verified then), before this process loads it: the cache's own check must catch it.
    await service.bucket.objects.put(`models/${broken}/weights.bin`, Buffer.from('broken'));
    await service.cache.refresh();
    await service.cache.candidateSettled();
    assert.ok(service.logs.some((l) => l.message === 'candidate failed to load; serving without it'));
    sink.records.length = 0;
    for (const [i, event] of inputs.slice(0, 20).entries())
      assert.deepEqual(withoutId(body(await service.handler(event))), alone[i]);
    assert.ok(sink.records.every((r) => r.alternative === undefined));
    assert.equal(body(await service.handler(apiEvent('GET', '/health'))).candidate.state, 'failed');
  });

  test('clearing the candidate drops it from the process and from /health', async () => {
    await setCandidate({ version: candidate, mode: 'shadow' });
    assert.equal((await service.cache.get()).candidate?.version, candidate);
    await service.store.clearCandidate();
    await service.cache.refresh();
    assert.equal((await service.cache.get()).candidate, undefined);
    assert.equal(body(await service.handler(apiEvent('GET', '/health'))).candidate, undefined);
  });
});

describe('a malformed candidate in the pointer', () => {
  test('is logged loudly and the serving version keeps answering', async () => {
    const service = await startService({});
    after(() => service.close());
    const pointer = await service.store.latest();
    await service.bucket.objects.put(
      LATEST_KEY,
      JSON.stringify({
        ...pointer,
        candidate: { version: '20261202T000000Z-mlp', mode: 'canary', percent: 100, since: NOW.toISOString() },
      }),
    );
    await service.cache.refresh();
    const error = service.logs.find(
      (l) => l.message === 'the candidate in the model pointer is invalid; serving without one',
    );
    assert.match(String(error?.problem), /percent is not a whole number/);
    const result = await service.handler(postJson('/predict', { pixels: Array.from({ length: 784 }, () => 0) }));
    assert.equal(result.statusCode, 200);
    assert.equal(JSON.parse(String(result.body)).modelVersion, service.version);
  });
});

describe('capture records with an alternative', () => {
  const answered = '20261201T000000Z-mlp';
  const record = captureRecord({
    version: answered,
    digit: 3,
    confidence: 0.9,
    at: NOW,
    alternative: { modelVersion: '20261202T000000Z-cnn', digit: 5, confidence: 0.6 },
  });

  test('read back as written, in schema 1: the field is optional, so older records still read', () => {
    assert.equal(record.schema, 1);
    assert.deepEqual(parseCapture(JSON.stringify(record)), record);
    const { alternative: _, ...older } = record;
    assert.deepEqual(parseCapture(JSON.stringify(older)), older);
  });

  for (const [what, alternative] of [
    ['of the version that answered', { modelVersion: answered, digit: 5, confidence: 0.6 }],
    ['with an extra field', { modelVersion: '20261202T000000Z-cnn', digit: 5, confidence: 0.6, input: 'x' }],
    ['with digit 10', { modelVersion: '20261202T000000Z-cnn', digit: 10, confidence: 0.6 }],
    ['with confidence 2', { modelVersion: '20261202T000000Z-cnn', digit: 5, confidence: 2 }],
    ['that is null', null],
    ['with a path for a version', { modelVersion: '../x', digit: 5, confidence: 0.6 }],
  ] as const) {
    test(`a record whose alternative is ${what} is refused`, () => {
      assert.equal(parseCapture(JSON.stringify({ ...record, alternative })), undefined);
    });
  }
});
