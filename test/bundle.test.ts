import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import JPEG from 'jpeg-js';
import { PNG } from 'pngjs';
import { parseCapture } from '#lib/live/records';
import { ModelStore } from '#lib/storage/store';
import { LAMBDA_ESBUILD } from '../infra/lambda-bundle.ts';
import { buildPredict } from '../scripts/build.ts';
import { tempDir, testBucket, testMnist, type TestBucket } from './support/env.ts';
import { apiEvent, postJson } from './support/events.ts';
import { storeTrainedModel } from './support/service.ts';

const run = promisify(execFile);

let bundleDir: string;
let bucket: TestBucket;
let version: string;

before(async () => {
  const built = await buildPredict(path.join(await tempDir('digitnet-build-'), 'predict'));
  // Outside the repository, so nothing can be resolved from node_modules: the folder must stand alone.
  bundleDir = path.join(await tempDir('digitnet-bundle-'), 'predict');
  await cp(built.outDir, bundleDir, { recursive: true });
  bucket = await testBucket();
  const store = new ModelStore(bucket.objects);
  version = await storeTrainedModel(store);
  await store.promote(version);
});

/**
 * The Node the Lambda runs (LAMBDA_ESBUILD's target), which may not be the one
 * running the tests: .ci/lambda-node fetches one and CI passes its path here.
 */
const lambdaNode = process.env.LAMBDA_NODE;
const lambdaMajor = LAMBDA_ESBUILD.target.replace(/^node/, '');

/** Imports the bundle from its folder in a fresh `node` process and calls the handler with each event. */
async function invoke(
  node: string,
  events: unknown[],
  env: Record<string, string>,
): Promise<{ results: { statusCode: number; body: string }[]; logs: string; stdout: string[] }> {
  const script = path.join(bundleDir, '..', 'invoke.mjs');
  await writeFile(
    script,
    `const { handler } = await import(${JSON.stringify(path.join(bundleDir, 'index.mjs'))});
     const events = JSON.parse(process.argv[2]);
     const out = [];
     for (const e of events) out.push(await handler(e, { awsRequestId: 'bundle-test' }));
     process.stdout.write(JSON.stringify(out) + '\\n');`,
  );
  const { stdout, stderr } = await run(node, [script, JSON.stringify(events)], {
    cwd: path.dirname(bundleDir),
    env: { PATH: process.env.PATH!, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
    maxBuffer: 8 * 1024 * 1024,
  });
  // The handler's own stdout lines (captures) come first; the invoking script's results are the last line.
  const lines = stdout.trimEnd().split('\n');
  return { results: JSON.parse(lines.pop()!), logs: stderr, stdout: lines };
}

describe('npm run build', () => {
  test('puts the handler, its .wasm files and the page in one folder', async () => {
    const files = await readdir(bundleDir, { recursive: true });
    for (const file of [
      'index.mjs',
      'tfjs-backend-wasm.wasm',
      'tfjs-backend-wasm-simd.wasm',
      path.join('web', 'index.html'),
    ]) {
      assert.ok(files.includes(file), `bundle has ${file}`);
    }
  });

  test('holds nothing of the embedded S3: no s3rver, busboy, dicer or its guard', async () => {
    const code = readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8');
    for (const name of ['s3rver', 'busboy', 'dicer', 'embedded S3'])
      assert.ok(!code.includes(name), `the Lambda bundle mentions ${name}`);
  });

  test('carries none of the AWS SDK and no tfjs-layers: the predict function only reads, signed by its own code', async () => {
    const code = readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8');
    for (const name of ['S3Client', 'GetObjectCommand', 'SignatureV4', 'LayersModel', 'loadLayersModel'])
      assert.ok(!code.includes(name), `the predict bundle contains ${name}`);
  });

  test('carries no training code: no training kernels, no training loop, no optimiser', async () => {
    const code = readFileSync(path.join(bundleDir, 'index.mjs'), 'utf8');
    // keepNames keeps function names in the bundle, so a name absent here is code absent.
    for (const name of [
      'registerConv2DBackpropFilter',
      'registerMaxPoolGrad',
      'registerMatMulKernels',
      'trainModel',
      'HeapAdam',
    ]) {
      assert.ok(!code.includes(name), `the predict bundle contains ${name}`);
    }
  });
});

/** What the bundle must do under each Node it may run on. */
function answersUnder(node: string): void {
  test('the bundle answers from its own folder against the embedded S3, on the wasm backend', async () => {
    const { images, labels } = (await testMnist()).test;
    const pixels = Array.from(images.subarray(0, 784));
    const { results, logs, stdout } = await invoke(
      node,
      [apiEvent('GET', '/health'), postJson('/predict', { pixels }), apiEvent('GET', '/')],
      bucket.env,
    );
    const [health, prediction, page] = results;
    assert.match(logs, /"message":"tfjs backend active","backend":"wasm"/, 'the bundle found its .wasm files');
    assert.equal(health!.statusCode, 200, health!.body);
    assert.deepEqual(JSON.parse(health!.body), { status: 'ok', modelVersion: version });
    const answer = JSON.parse(prediction!.body);
    assert.equal(answer.digit, labels[0]);
    // As in Lambda: the prediction is captured as one line on stdout, for the log subscription to ship.
    assert.deepEqual(
      stdout.map((line) => parseCapture(line)?.predictionId),
      [answer.predictionId],
    );
    assert.equal(page!.statusCode, 200);
    assert.match(page!.body, /<html/i);
  });

  test('the bundle decodes PNG and JPEG uploads, each under its time budget', async () => {
    const { images, labels } = (await testMnist()).test;
    const digit = new PNG({ width: 28, height: 28 });
    images.subarray(0, 784).forEach((value, i) => digit.data.set([value, value, value, 255], i * 4));
    const png = PNG.sync.write(digit);
    const jpeg = JPEG.encode({ data: digit.data, width: 28, height: 28 }, 95).data;
    const { results } = await invoke(
      node,
      [png, jpeg].map((bytes) => postJson('/predict', { image: Buffer.from(bytes).toString('base64') })),
      bucket.env,
    );
    for (const result of results) {
      assert.equal(result.statusCode, 200, result.body);
      assert.equal(JSON.parse(result.body).digit, labels[0]);
    }
  });

  test('the bundle fails at cold start when BUCKET is missing', async () => {
    await assert.rejects(invoke(node, [apiEvent('GET', '/health')], {}), /BUCKET must be set/);
  });

  test('the bundle fails at cold start without credentials to sign its reads with', async () => {
    await assert.rejects(
      invoke(node, [apiEvent('GET', '/health')], { BUCKET: 'digitnet-test' }),
      /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set/,
    );
  });

  test('the bundle fails at cold start when told to write captures to the bucket, which it cannot', async () => {
    await assert.rejects(
      invoke(node, [apiEvent('GET', '/health')], { ...bucket.env, CAPTURE_MODE: 'bucket' }),
      /CAPTURE_MODE=bucket is for the local stack/,
    );
  });
}

describe(`the bundle under this Node (${process.version})`, () => answersUnder(process.execPath));

describe(`the bundle under the Lambda's Node ${lambdaMajor}`, {
  skip: !lambdaNode && 'LAMBDA_NODE is not set (.ci/lambda-node fetches one)',
}, () => {
  test(`LAMBDA_NODE is Node ${lambdaMajor}`, async () => {
    const { stdout } = await run(lambdaNode!, ['-p', 'process.versions.node']);
    assert.equal(stdout.split('.')[0], lambdaMajor);
  });

  answersUnder(lambdaNode!);
});
