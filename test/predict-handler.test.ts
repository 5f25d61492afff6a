import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Jimp } from 'jimp';
import { initBackend } from '#lib/backend';
import { createLogger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { ModelCache } from '#lib/model-cache';
import { MAX_BATCH } from '#lib/predict-request';
import { ModelStore } from '#lib/storage/store';
import { makeHandler, type Result } from '../functions/predict/app.ts';
import { testBucket, testMnist } from './support/env.ts';
import { apiEvent, postJson } from './support/events.ts';
import { startService, storeTrainedModel, type TestService } from './support/service.ts';

let service: TestService;
before(async () => {
  service = await startService();
});
after(() => service.close());

const { images, labels } = (await testMnist()).test;
const digitPixels = (i: number) => Array.from(images.subarray(i * 784, (i + 1) * 784));

/** MNIST test digit i as a PNG, dark ink on white, scaled up `scale` times. */
async function digitPng(i: number, scale = 4): Promise<Buffer> {
  const side = 28 * scale;
  const image = new Jimp({ width: side, height: side, color: 0xffffffff });
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = 255 - images[i * 784 + Math.floor(y / scale) * 28 + Math.floor(x / scale)]!;
      image.bitmap.data.set([v, v, v, 255], (y * side + x) * 4);
    }
  }
  return image.getBuffer('image/png');
}

const body = (result: Result) => JSON.parse(result.body as string);

function assertError(result: Result, status: number, code: string, message?: RegExp): void {
  assert.equal(result.statusCode, status, result.body as string);
  const parsed = body(result);
  assert.equal(parsed.error.code, code);
  assert.equal(typeof parsed.error.message, 'string');
  if (message) assert.match(parsed.error.message, message);
  assert.doesNotMatch(result.body as string, /\bat .*\.ts:\d+|node_modules|\/work\//, 'no stack traces or paths');
}

describe('POST /predict', () => {
  test('classifies {"pixels": [...]} and answers digit, confidence, probabilities and model version', async () => {
    const result = await service.handler(postJson('/predict', { pixels: digitPixels(0) }));
    assert.equal(result.statusCode, 200);
    const answer = body(result);
    assert.equal(answer.digit, labels[0]);
    assert.equal(answer.probabilities.length, 10);
    assert.ok(Math.abs(answer.probabilities.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-3);
    assert.equal(answer.confidence, answer.probabilities[answer.digit]);
    assert.equal(answer.modelVersion, service.version);
    assert.equal(result.headers['x-request-id'], 'req-test');
  });

  test('classifies a base64 PNG and a data: URL alike', async () => {
    const png = await digitPng(1);
    const plain = body(await service.handler(postJson('/predict', { image: png.toString('base64') })));
    const dataUrl = body(
      await service.handler(postJson('/predict', { image: `data:image/png;base64,${png.toString('base64')}` })),
    );
    assert.equal(plain.digit, labels[1]);
    const { predictionId: plainId, ...plainAnswer } = plain;
    const { predictionId: dataUrlId, ...dataUrlAnswer } = dataUrl;
    assert.deepEqual(dataUrlAnswer, plainAnswer);
    assert.notEqual(dataUrlId, plainId, 'each answer has its own predictionId');
  });

  test('classifies a raw image/png body (API Gateway base64-encodes binary bodies)', async () => {
    const result = await service.handler(
      apiEvent('POST', '/predict', { body: await digitPng(2), contentType: 'image/png' }),
    );
    assert.equal(result.statusCode, 200, result.body as string);
    assert.equal(body(result).digit, labels[2]);
  });

  test('answers a batch in order with one model version', async () => {
    const pngs = await Promise.all([3, 4, 5].map((i) => digitPng(i, 2)));
    const result = body(await service.handler(postJson('/predict', { images: pngs.map((p) => p.toString('base64')) })));
    assert.deepEqual(
      result.predictions.map((p: { digit: number }) => p.digit),
      [labels[3], labels[4], labels[5]],
    );
    assert.equal(result.modelVersion, service.version);
  });

  test('includeInput returns the 28×28 input the model saw', async () => {
    const result = body(
      await service.handler(
        postJson('/predict', { image: (await digitPng(0)).toString('base64'), includeInput: true }),
      ),
    );
    assert.equal(result.input.length, 784);
    assert.ok(result.input.every((v: number) => Number.isInteger(v) && v >= 0 && v <= 255));
    assert.ok(Math.max(...result.input) === 255);
  });

  const png1x1 = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==',
    'base64',
  );
  function pngClaiming(width: number, height: number): Buffer {
    const header = Buffer.from(png1x1.subarray(0, 33));
    header.writeUInt32BE(width, 16);
    header.writeUInt32BE(height, 20);
    return header;
  }

  const cases: [
    string,
    () => Promise<ReturnType<typeof postJson>> | ReturnType<typeof postJson>,
    number,
    string,
    RegExp?,
  ][] = [
    ['an empty body', () => apiEvent('POST', '/predict'), 400, 'empty_body'],
    ['bad JSON', () => postJson('/predict', '{"image": '), 400, 'invalid_json'],
    ['a JSON array', () => postJson('/predict', [1, 2]), 400, 'invalid_body'],
    ['no image field', () => postJson('/predict', {}), 400, 'missing_field', /exactly one of/],
    ['two input fields', () => postJson('/predict', { image: 'AAAA', pixels: [] }), 400, 'invalid_request'],
    ['an unknown field', () => postJson('/predict', { image: 'AAAA', colour: 'red' }), 400, 'unknown_field', /colour/],
    ['a number as image', () => postJson('/predict', { image: 42 }), 400, 'invalid_image'],
    ['bad base64', () => postJson('/predict', { image: 'not base64!!' }), 400, 'invalid_base64'],
    [
      'base64 of text, not an image',
      () => postJson('/predict', { image: Buffer.from('hello world').toString('base64') }),
      415,
      'unsupported_image',
    ],
    [
      'a truncated PNG',
      () => postJson('/predict', { image: png1x1.subarray(0, 40).toString('base64') }),
      400,
      'corrupt_image',
    ],
    [
      'a PNG header claiming 100000×100000',
      () => postJson('/predict', { image: pngClaiming(100_000, 100_000).toString('base64') }),
      413,
      'image_too_large',
    ],
    [
      'an image over 1 MB',
      () => postJson('/predict', { image: Buffer.alloc(1024 * 1024 + 10).toString('base64') }),
      413,
      'image_too_large',
    ],
    [
      'a body over the 4 MiB limit',
      () => postJson('/predict', { images: ['A'.repeat(7 * 1024 * 1024)] }),
      413,
      'body_too_large',
    ],
    [
      'too many images',
      () => postJson('/predict', { images: new Array(MAX_BATCH + 1).fill('AAAA') }),
      413,
      'batch_too_large',
    ],
    ['an empty batch', () => postJson('/predict', { images: [] }), 400, 'invalid_images'],
    ['images not an array', () => postJson('/predict', { images: 'AAAA' }), 400, 'invalid_images'],
    ['783 pixels', () => postJson('/predict', { pixels: new Array(783).fill(0) }), 400, 'invalid_pixels'],
    [
      'a pixel over 255',
      () => postJson('/predict', { pixels: [...new Array(783).fill(0), 256] }),
      400,
      'invalid_pixels',
    ],
    ['a string pixel', () => postJson('/predict', { pixels: [...new Array(783).fill(0), '1'] }), 400, 'invalid_pixels'],
    [
      'includeInput not a boolean',
      () => postJson('/predict', { pixels: digitPixels(0), includeInput: 'yes' }),
      400,
      'invalid_include_input',
    ],
    [
      'an XML content type',
      () => apiEvent('POST', '/predict', { body: '<image/>', contentType: 'application/xml' }),
      415,
      'unsupported_media_type',
    ],
    [
      'a raw image/png body that is not a PNG',
      () => apiEvent('POST', '/predict', { body: Buffer.from('GIF89a...'), contentType: 'image/png' }),
      400,
      'corrupt_image',
    ],
  ];
  for (const [name, event, status, code, message] of cases) {
    test(`returns ${status} ${code} for ${name}`, async () => {
      assertError(await service.handler(await event()), status, code, message);
    });
  }
});

describe('other routes', () => {
  test('GET /model returns the serving version with its evaluation', async () => {
    const result = await service.handler(apiEvent('GET', '/model'));
    assert.equal(result.statusCode, 200);
    const model = body(result);
    assert.equal(model.modelVersion, service.version);
    assert.equal(model.arch, 'mlp');
    assert.ok(model.test.accuracy > 0.95);
    assert.equal(model.test.confusion.length, 10);
    assert.equal(model.test.perClass.length, 10);
  });

  test('GET /health is 200 with the model version', async () => {
    const result = await service.handler(apiEvent('GET', '/health'));
    assert.deepEqual(body(result), { status: 'ok', modelVersion: service.version });
  });

  test('GET / serves the web page as HTML', async () => {
    const result = await service.handler(apiEvent('GET', '/'));
    assert.equal(result.statusCode, 200);
    assert.match(result.headers['content-type']!, /text\/html/);
    assert.match(result.body as string, /<html|<!doctype/i);
  });

  test('GET /model/report is 404 when the version has no report, and serves it when it has one', async () => {
    assertError(await service.handler(apiEvent('GET', '/model/report')), 404, 'not_found', /no stored report/);
    await service.store.attach(service.version!, 'report.html', '<html>report</html>', 'text/html');
    const result = await service.handler(apiEvent('GET', '/model/report'));
    assert.equal(result.statusCode, 200);
    assert.equal(result.body, '<html>report</html>');
  });

  test('an unknown route is a 404 JSON error', async () => {
    assertError(await service.handler(apiEvent('GET', '/nope')), 404, 'route_not_found', /GET \/nope/);
  });

  test('a wrong method is a 405 that says which one to use', async () => {
    const result = await service.handler(apiEvent('GET', '/predict'));
    assertError(result, 405, 'method_not_allowed');
    assert.equal(result.headers.allow, 'POST');
  });
});

describe('metrics', () => {
  test('a prediction records Latency and NotDigit, and Predictions, Confidence and LowConfidence by model version, in one line', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({}, (line) => lines.push(JSON.parse(line)), 'error');
    const handler = makeHandler({
      cache: service.cache,
      logger,
      backendReady: () => initBackend(),
      page: async () => '',
      metrics: { sink: createMetrics('emf', { stage: 'dev', component: 'predict' }), lowConfidenceThreshold: 0.6 },
    });
    const pngs = await Promise.all([0, 1, 2].map((i) => digitPng(i, 2)));
    const result = await handler(postJson('/predict', { images: pngs.map((p) => p.toString('base64')) }));
    const confidences: number[] = body(result).predictions.map((p: { confidence: number }) => p.confidence);
    assert.equal(lines.length, 1, 'one metrics line, and no other line at LOG_LEVEL error');
    const { _aws, Latency, Confidence, ...rest } = lines[0]!;
    assert.deepEqual(rest, {
      level: 'info',
      time: rest.time,
      requestId: 'req-test',
      message: 'metrics',
      stage: 'dev',
      component: 'predict',
      modelVersion: service.version,
      ColdStart: 1,
      Predictions: 3,
      LowConfidence: confidences.filter((c) => c < 0.6).length,
      NotDigit: 0,
    });
    assert.ok(typeof Latency === 'number' && Latency > 0, `latency ${Latency}`);
    assert.ok(Math.abs((Confidence as number) - confidences.reduce((a, b) => a + b) / 3) < 1e-9);
    assert.deepEqual((_aws as { CloudWatchMetrics: unknown }).CloudWatchMetrics, [
      {
        Namespace: 'digitnet',
        Dimensions: [['stage', 'component']],
        Metrics: [
          { Name: 'ColdStart', Unit: 'Count' },
          { Name: 'Latency', Unit: 'Milliseconds' },
          { Name: 'NotDigit', Unit: 'Count' },
        ],
      },
      {
        Namespace: 'digitnet',
        Dimensions: [
          ['stage', 'component'],
          ['stage', 'component', 'modelVersion'],
        ],
        Metrics: [
          { Name: 'Predictions', Unit: 'Count' },
          { Name: 'Confidence', Unit: 'None' },
          { Name: 'LowConfidence', Unit: 'Count' },
        ],
      },
    ]);
  });

  test('an answer below the threshold counts as LowConfidence', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({}, (line) => lines.push(JSON.parse(line)), 'error');
    const handler = makeHandler({
      cache: service.cache,
      logger,
      backendReady: () => initBackend(),
      page: async () => '',
      metrics: { sink: createMetrics('emf', { stage: 'dev', component: 'predict' }), lowConfidenceThreshold: 1 },
    });
    await handler(postJson('/predict', { pixels: digitPixels(0) }));
    assert.equal(lines[0]!.LowConfidence, 1, 'every confidence is below 1');
  });
});

describe('without a model', () => {
  test('/health and /predict are 503 with a message that says how to train', async () => {
    await initBackend();
    const bucket = await testBucket();
    const logger = createLogger({}, () => {});
    const handler = makeHandler({
      cache: new ModelCache({ store: new ModelStore(bucket.objects), refreshSeconds: 0, logger }),
      logger,
      backendReady: async () => {},
      page: async () => '',
    });
    for (const event of [apiEvent('GET', '/health'), postJson('/predict', { pixels: digitPixels(0) })]) {
      assertError(await handler(event), 503, 'no_model', /npm run train/);
    }
  });

  test('a cold start whose promoted version will not load serves the previous one, and /health and /model both say so', async () => {
    await initBackend();
    const bucket = await testBucket();
    const store = new ModelStore(bucket.objects);
    const good = await storeTrainedModel(store);
    const bad = await storeTrainedModel(store);
    await store.promote(good);
    await store.promote(bad);
    await bucket.objects.put(`models/${bad}/weights.bin`, Buffer.from('broken'));
    const logger = createLogger({}, () => {});
    const handler = makeHandler({
      cache: new ModelCache({ store, refreshSeconds: 60, logger }),
      logger,
      backendReady: async () => {},
      page: async () => '',
    });
    const health = await handler(apiEvent('GET', '/health'));
    assert.equal(health.statusCode, 200);
    const body = JSON.parse(String(health.body));
    assert.deepEqual(
      { ...body, fallback: { ...body.fallback, reason: typeof body.fallback?.reason } },
      {
        status: 'degraded',
        modelVersion: good,
        fallback: { from: bad, reason: 'string' },
      },
    );
    assert.match(body.fallback.reason, /weights\.bin/);
    const model = JSON.parse(String((await handler(apiEvent('GET', '/model'))).body));
    assert.equal(model.modelVersion, good);
    assert.deepEqual(model.fallback, body.fallback);
  });

  test('an unexpected error is a 500 with a generic body and the details only in the log', async () => {
    const lines: string[] = [];
    const logger = createLogger({}, (line) => lines.push(line));
    const handler = makeHandler({
      cache: new ModelCache({ store: new ModelStore((await testBucket()).objects), refreshSeconds: 0, logger }),
      logger,
      backendReady: async () => {
        throw new Error('secret internal detail at /work/x.ts:1');
      },
      page: async () => '',
    });
    const result = await handler(apiEvent('GET', '/health'), { awsRequestId: 'req-500' });
    assert.equal(result.statusCode, 500);
    assert.deepEqual(body(result), { error: { code: 'internal_error', message: 'internal error (request req-500)' } });
    const logged = lines.map((l) => JSON.parse(l)).find((l) => l.message === 'unexpected error');
    assert.equal(logged.requestId, 'req-500');
    assert.match(logged.error.stack, /secret internal detail/);
  });
});

describe('over HTTP', () => {
  test('the local adapter turns requests into events and answers', async () => {
    const response = await fetch(`${service.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(await digitPng(7)),
    });
    assert.equal(response.status, 200);
    assert.equal((await response.json()).digit, labels[7]);
  });

  test('a path starting with // is a path, not a host', async () => {
    const response = await fetch(`${service.url}//predict`);
    assert.equal(response.status, 404);
    assert.equal((await response.json()).error.code, 'route_not_found');
  });

  test('a body over the 4 MiB limit is refused with 413 while it is still arriving', async () => {
    const response = await fetch(`${service.url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: 'x'.repeat(11 * 1024 * 1024),
    });
    assert.equal(response.status, 413);
    assert.equal((await response.json()).error.code, 'body_too_large');
  });
});
