import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { postJson } from './support/events.ts';
import { testMnist } from './support/env.ts';
import { canvasDrawing, paperPhoto } from '../scripts/bench/rerender.ts';
import { startService, type TestService } from './support/service.ts';

const PER_KIND = 200;
let service: TestService;
before(async () => {
  service = await startService();
});
after(() => service.close());

async function accuracy(render: (digit: Uint8Array, seed: number) => Promise<Buffer>): Promise<number> {
  const { test: split } = await testMnist();
  let correct = 0;
  for (let start = 0; start < PER_KIND; start += 32) {
    const indices = Array.from({ length: Math.min(32, PER_KIND - start) }, (_, i) => start + i);
    const images = await Promise.all(indices.map((i) => render(split.images.subarray(i * 784, (i + 1) * 784), i + 1)));
    const result = await service.handler(postJson('/predict', { images: images.map((b) => b.toString('base64')) }));
    assert.equal(result.statusCode, 200, result.body as string);
    const { predictions } = JSON.parse(result.body as string);
    predictions.forEach(
      (p: { digit: number }, k: number) => (correct += p.digit === split.labels[indices[k]!] ? 1 : 0),
    );
  }
  return correct / PER_KIND;
}

describe('real-upload style images through POST /predict', () => {
  const results: Record<string, number> = {};

  test('canvas drawings (280×280, transparent, off-centre, thick strokes) score at least 93%', async (t) => {
    results.canvas = await accuracy(canvasDrawing);
    t.diagnostic(`canvas accuracy ${results.canvas}`);
    assert.ok(results.canvas >= 0.93, `canvas accuracy ${results.canvas}`);
  });

  test('JPEG photos of dark ink on grey noisy paper score at least 93%', async (t) => {
    results.photo = await accuracy(paperPhoto);
    t.diagnostic(`photo accuracy ${results.photo}`);
    assert.ok(results.photo >= 0.93, `photo accuracy ${results.photo}`);
  });

  test('both kinds together score at least 96%', () => {
    const overall = (results.canvas! + results.photo!) / 2;
    assert.ok(overall >= 0.96, `overall ${overall} (canvas ${results.canvas}, photo ${results.photo})`);
  });
});
