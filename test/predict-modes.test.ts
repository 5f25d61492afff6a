/**
 * POST /predict's two readings of an upload: one digit with a verdict on
 * whether it is one (isDigit, reason), and a whole number (`mode: "number"`),
 * each digit an answer of its own that is captured and can be corrected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Jimp } from 'jimp';
import { initBackend } from '#lib/backend';
import type { CaptureSink } from '#lib/live/capture-sink';
import { type CaptureRecord, feedbackKey, parseCapture } from '#lib/live/records';
import { createLogger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { seededRandom } from '#lib/training/batches';
import { VERDICT_REASONS } from '#lib/verdict';
import { makeHandler, type Result } from '../functions/predict/app.ts';
import { testMnist } from './support/env.ts';
import { apiEvent, postJson } from './support/events.ts';
import { startService, type TestService } from './support/service.ts';

function memorySink(): CaptureSink & { records: CaptureRecord[] } {
  const records: CaptureRecord[] = [];
  return { records, write: (record) => records.push(record), flush: async () => {} };
}

const sink = memorySink();
let service: TestService;
before(async () => {
  service = await startService({ capture: { sink, sampleRate: 1 } });
});
after(() => service.close());

const { images, labels } = (await testMnist()).test;
const body = (result: Result) => JSON.parse(result.body as string);

const SCALE = 3;
const SIDE = 28 * SCALE;

/** MNIST test digits side by side, dark ink on white, `gap` px apart (28×3 px cells), with a margin. */
async function numberPng(indices: number[], gap = 24): Promise<Buffer> {
  const margin = 20;
  const width = margin * 2 + indices.length * SIDE + (indices.length - 1) * gap;
  const image = new Jimp({ width, height: SIDE + margin * 2, color: 0xffffffff });
  indices.forEach((index, k) => {
    const left = margin + k * (SIDE + gap);
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        const ink = images[index * 784 + Math.floor(y / SCALE) * 28 + Math.floor(x / SCALE)]!;
        if (ink === 0) continue;
        const v = 255 - ink;
        image.bitmap.data.set([v, v, v, 255], ((margin + y) * width + left + x) * 4);
      }
  });
  return image.getBuffer('image/png');
}

async function blankPng(): Promise<Buffer> {
  return new Jimp({ width: 60, height: 60, color: 0xffffffff }).getBuffer('image/png');
}

/** Grey noise over the whole frame: nothing a pen would make. */
async function noisePng(seed: number): Promise<Buffer> {
  const random = seededRandom(seed);
  const image = new Jimp({ width: 120, height: 120, color: 0xffffffff });
  for (let p = 0; p < 120 * 120; p++) {
    const v = Math.floor(random() * 256);
    image.bitmap.data.set([v, v, v, 255], p * 4);
  }
  return image.getBuffer('image/png');
}

/** Indices of the first test digits of each class, so a number's digits are known. */
const firstOf = (digit: number) => labels.indexOf(digit);
const written = (digits: number[]) => digits.map(firstOf);

describe('the verdict on each answer', () => {
  test('a clean digit is a digit: isDigit true, no reason', async () => {
    const answer = body(
      await service.handler(postJson('/predict', { image: (await numberPng([0])).toString('base64') })),
    );
    assert.equal(answer.digit, labels[0]);
    assert.equal(answer.isDigit, true);
    assert.equal(answer.reason, undefined);
    assert.equal(answer.message, undefined);
  });

  test('an image without ink answers 200 no_ink, with no digit and no prediction id', async () => {
    const result = await service.handler(postJson('/predict', { image: (await blankPng()).toString('base64') }));
    assert.equal(result.statusCode, 200, result.body as string);
    const answer = body(result);
    assert.deepEqual(
      { ...answer, message: typeof answer.message },
      {
        digit: null,
        confidence: null,
        probabilities: null,
        isDigit: false,
        reason: 'no_ink',
        message: 'string',
        modelVersion: service.version,
      },
    );
  });

  test('in a batch a blank image is one no_ink answer and the others are answered', async () => {
    const batch = [await blankPng(), await numberPng([1]), await blankPng()].map((b) => b.toString('base64'));
    const { predictions } = body(await service.handler(postJson('/predict', { images: batch })));
    assert.deepEqual(
      predictions.map((p: { reason?: string; digit: number | null }) => [p.digit, p.reason]),
      [
        [null, 'no_ink'],
        [labels[1], undefined],
        [null, 'no_ink'],
      ],
    );
  });

  test('noise is flagged with a documented reason, and still carries the model’s guess', async () => {
    const answer = body(await service.handler(postJson('/predict', { image: (await noisePng(3)).toString('base64') })));
    assert.equal(answer.isDigit, false);
    assert.ok((VERDICT_REASONS as readonly string[]).includes(answer.reason), answer.reason);
    assert.ok(answer.message.length > 10);
    assert.equal(answer.probabilities.length, 10);
    assert.ok(Number.isInteger(answer.digit));
  });

  test('a written number sent as one digit is several_marks, and the message points to number mode', async () => {
    const answer = body(
      await service.handler(postJson('/predict', { image: (await numberPng(written([1, 2, 0]))).toString('base64') })),
    );
    assert.equal(answer.isDigit, false);
    assert.equal(answer.reason, 'several_marks');
    assert.match(answer.message, /number/);
  });

  test('the verdict is captured with the answer, and read back', async () => {
    sink.records.length = 0;
    const answer = body(await service.handler(postJson('/predict', { image: (await noisePng(4)).toString('base64') })));
    const [record] = sink.records;
    assert.equal(record!.predictionId, answer.predictionId);
    assert.equal(record!.isDigit, false);
    assert.equal(record!.reason, answer.reason);
    assert.deepEqual(parseCapture(JSON.stringify(record)), record);
  });

  test('metrics count what is not a digit, in all and by reason', async () => {
    const lines: Record<string, unknown>[] = [];
    const handler = makeHandler({
      cache: service.cache,
      logger: createLogger({}, (line) => lines.push(JSON.parse(line)), 'error'),
      backendReady: () => initBackend(),
      page: async () => '',
      metrics: { sink: createMetrics('emf', { stage: 'dev', component: 'predict' }), lowConfidenceThreshold: 0.6 },
    });
    const batch = [await blankPng(), await blankPng(), await numberPng([2])].map((b) => b.toString('base64'));
    await handler(postJson('/predict', { images: batch }));
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.NotDigit, 2);
    assert.equal(lines[0]!.NotDigitNoInk, 2);
    assert.equal(lines[0]!.Predictions, 1, 'a blank image is not a prediction');
  });
});

describe('number mode', () => {
  const digits = [4, 0, 7, 1];

  function assertNumber(answer: Record<string, unknown>, expected: number[], width: number, height: number): void {
    assert.equal(answer.number, expected.join(''));
    const parts = answer.digits as { digit: number; confidence: number; box: number[]; predictionId: string }[];
    assert.deepEqual(
      parts.map((d) => d.digit),
      expected,
    );
    const product = parts.reduce((p, d) => p * d.confidence, 1);
    assert.ok(Math.abs((answer.confidence as number) - product) < 1e-5);
    assert.equal(new Set(parts.map((d) => d.predictionId)).size, parts.length, 'one prediction id per digit');
    let right = -1;
    for (const { box } of parts) {
      const [x, y, w, h] = box as [number, number, number, number];
      assert.ok(x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= width && y + h <= height, `box ${box}`);
      assert.ok(x > right - w / 2, 'left to right');
      right = x + w;
    }
    assert.equal(answer.modelVersion, service.version);
  }

  test('{"image", "mode": "number"} reads the digits left to right, each with its box and prediction id', async () => {
    const png = await numberPng(written(digits));
    const image = await Jimp.read(png);
    const answer = body(await service.handler(postJson('/predict', { image: png.toString('base64'), mode: 'number' })));
    assertNumber(answer, digits, image.bitmap.width, image.bitmap.height);
  });

  test('a raw image body to /predict?mode=number reads the same number', async () => {
    const png = await numberPng(written(digits));
    const event = apiEvent('POST', '/predict', { body: png, contentType: 'image/png', query: { mode: 'number' } });
    const image = await Jimp.read(png);
    assertNumber(body(await service.handler(event)), digits, image.bitmap.width, image.bitmap.height);
  });

  test('over HTTP, ?mode=number reaches the handler', async () => {
    const png = await numberPng(written([3, 8]));
    const response = await fetch(`${service.url}/predict?mode=number`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: new Uint8Array(png),
    });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { number: string }).number, '38');
  });

  test('each digit of a number is captured with its place, and feedback corrects one digit', async () => {
    sink.records.length = 0;
    const answer = body(
      await service.handler(
        postJson('/predict', { image: (await numberPng(written([5, 6]))).toString('base64'), mode: 'number' }),
      ),
    );
    const ids = answer.digits.map((d: { predictionId: string }) => d.predictionId);
    assert.deepEqual(
      sink.records.map((r) => [r.predictionId, r.part]),
      [
        [ids[0], { index: 0, of: 2 }],
        [ids[1], { index: 1, of: 2 }],
      ],
    );
    for (const record of sink.records) assert.deepEqual(parseCapture(JSON.stringify(record)), record);
    const response = await fetch(`${service.url}/feedback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ predictionId: ids[1], label: 6 }),
    });
    assert.ok(response.ok, await response.text());
    const stored = JSON.parse((await service.bucket.objects.get(feedbackKey(ids[1])))!.body.toString('utf8'));
    assert.equal(stored.label, 6);
  });

  for (const [name, event, code] of [
    [
      'nothing readable',
      async () => postJson('/predict', { image: (await blankPng()).toString('base64'), mode: 'number' }),
      'no_number_found',
    ],
    ['pixels', async () => postJson('/predict', { pixels: new Array(784).fill(0), mode: 'number' }), 'invalid_request'],
    [
      'a batch',
      async () => postJson('/predict', { images: [(await blankPng()).toString('base64')], mode: 'number' }),
      'invalid_request',
    ],
    [
      'an unknown mode',
      async () => postJson('/predict', { image: (await blankPng()).toString('base64'), mode: 'letters' }),
      'invalid_mode',
    ],
    [
      'a mode that is not a string',
      async () => postJson('/predict', { image: (await blankPng()).toString('base64'), mode: 1 }),
      'invalid_mode',
    ],
    [
      'a query and a body that disagree',
      async () => ({
        ...postJson('/predict', { image: (await blankPng()).toString('base64'), mode: 'digit' }),
        queryStringParameters: { mode: 'number' },
      }),
      'invalid_mode',
    ],
  ] as const) {
    test(`400 ${code} for ${name}`, async () => {
      const result = await service.handler(await event());
      assert.equal(result.statusCode, 400, result.body as string);
      assert.equal(body(result).error.code, code);
    });
  }
});
