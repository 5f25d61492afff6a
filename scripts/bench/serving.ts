/**
 * What the in-process prediction benches share (predict, capture, metrics,
 * candidate, cost): a promoted model in an embedded S3, the API Gateway event
 * a request arrives as, the uploads they send, the handler timed on them, and
 * the built bundle's cold start in fresh processes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Jimp } from 'jimp';
import { initBackend } from '#lib/backend';
import type { Handler } from '#lib/http';
import { startEmbeddedS3 } from '#lib/storage/embedded-s3';
import { createS3Client, IN_PROCESS_S3_TIMEOUTS, S3ObjectStore } from '#lib/storage/objects';
import { ModelStore, versionName } from '#lib/storage/store';
import { evaluateModel } from '#lib/training/evaluate';
import { loadMnist } from '#lib/training/mnist';
import { createModel } from '#lib/training/model';
import { trainModel } from '#lib/training/train-loop';
import { buildPredict } from '../build.ts';
import { canvasDrawing, paperPhoto } from './rerender.ts';
import { percentile, round, time } from './stats.ts';

const run = promisify(execFile);

export const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

/** A POST /predict with this JSON body, as API Gateway's HTTP API (v2) hands it to the function. */
export function event(body: string): Parameters<Handler>[0] {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/predict',
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    isBase64Encoded: false,
    body,
    requestContext: { requestId: 'bench', http: { method: 'POST', path: '/predict' } },
  } as unknown as Parameters<Handler>[0];
}

/** Milliseconds per request of `body` through `handler`, each answered 200 (after the warm-up `time` runs). */
export function timeHandler(handler: Handler, body: string, runs: number): Promise<number[]> {
  return time(async () => {
    const result = await handler(event(body));
    if (result.statusCode !== 200) throw new Error(String(result.body));
  }, runs);
}

/** An embedded S3 with a one-epoch MLP promoted in it, and MNIST: what each predict bench starts from. */
export async function servingSetUp() {
  const backend = await initBackend(['wasm', 'cpu']);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'digitnet-bench-'));
  const s3 = await startEmbeddedS3({ directory: path.join(dir, 's3'), port: 0 });
  const objects = new S3ObjectStore(createS3Client({ ...s3, timeouts: IN_PROCESS_S3_TIMEOUTS }), s3.bucket);
  const store = new ModelStore(objects);
  const mnist = await loadMnist({
    dir: process.env.MNIST_DIR && path.resolve(process.env.MNIST_DIR),
    bucket: objects,
    cacheDir: path.join(dir, 'mnist'),
  });
  const model = createModel({ arch: 'mlp' });
  const training = await trainModel(model, mnist.train, { epochs: 1, batchSize: 128 });
  const version = versionName('mlp', new Date());
  await store.save(model, {
    version,
    arch: 'mlp',
    createdAt: new Date().toISOString(),
    backend,
    params: model.countParams(),
    training: { ...training, epochs: 1, batchSize: 128, learningRate: 1e-3, schedule: 'cosine', seed: 42 },
    test: await evaluateModel(model, mnist.test),
  });
  await store.promote(version);
  model.dispose();
  return { backend, dir, s3, objects, store, mnist };
}

/** A 28×28 MNIST digit as the grey PNG a script would send. */
export async function smallPng(digit: Uint8Array): Promise<Buffer> {
  const small = new Jimp({ width: 28, height: 28, color: 0xff });
  for (let i = 0; i < 784; i++) small.bitmap.data.set([digit[i]!, digit[i]!, digit[i]!, 255], i * 4);
  return small.getBuffer('image/png');
}

/** The predict bench's three single-image uploads of one digit: a script's, the page's canvas, a phone photo. */
export async function uploads(digit: Uint8Array): Promise<Record<string, Buffer>> {
  return {
    '28x28 PNG': await smallPng(digit),
    '280x280 canvas PNG': await canvasDrawing(digit, 1),
    '320x240 JPEG photo': await paperPhoto(digit, 1),
  };
}

export const imageBody = (bytes: Buffer) => JSON.stringify({ image: bytes.toString('base64') });
export const batchBody = (bytes: Buffer, size: number) =>
  JSON.stringify({ images: new Array(size).fill(bytes.toString('base64')) });

export interface ColdStarts {
  runs: number;
  importMs: number[];
  totalMs: number[];
  /** Each process's peak resident memory, after its first answer and then one POST /predict of each of `bodies`. */
  maxRssMiB: number[];
}

/**
 * The built bundle imported in `runs` fresh processes, each through its first
 * answer (GET /health: module load, first model load from `storage`); then,
 * untimed, one POST /predict of each of `bodies`, for the peak memory.
 */
export async function coldStart(
  dir: string,
  storage: Record<string, string>,
  runs = 5,
  bodies: string[] = [],
): Promise<ColdStarts> {
  const built = await buildPredict(path.join(dir, 'bundle'));
  const script = path.join(dir, 'cold.mjs');
  const bodiesFile = path.join(dir, 'cold-bodies.json');
  await writeFile(bodiesFile, JSON.stringify(bodies));
  await writeFile(
    script,
    `const t0 = performance.now();
     const { handler } = await import(${JSON.stringify(path.join(built.outDir, 'index.mjs'))});
     const t1 = performance.now();
     const r = await handler({ rawPath: '/health', headers: {}, requestContext: { requestId: 'c', http: { method: 'GET', path: '/health' } } });
     if (r.statusCode !== 200) throw new Error(r.body);
     const totalMs = performance.now() - t0;
     const { readFileSync } = await import('node:fs');
     for (const body of JSON.parse(readFileSync(${JSON.stringify(bodiesFile)}, 'utf8'))) {
       const p = await handler({ rawPath: '/predict', headers: { 'content-type': 'application/json' }, body, requestContext: { requestId: 'c', http: { method: 'POST', path: '/predict' } } });
       if (p.statusCode !== 200) throw new Error(p.body);
     }
     const maxRssMiB = process.resourceUsage().maxRSS / 1024;
     process.stdout.write(JSON.stringify({ importMs: t1 - t0, totalMs, maxRssMiB }));`,
  );
  const totals: number[] = [];
  const imports: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { stdout } = await run(process.execPath, [script], {
      env: {
        PATH: process.env.PATH,
        ...storage,
        LOG_LEVEL: 'warn',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    // The last line: the predictions before it print their capture lines on stdout, as in Lambda.
    const { importMs, totalMs, maxRssMiB } = JSON.parse(stdout.trimEnd().split('\n').at(-1)!);
    imports.push(importMs);
    totals.push(totalMs);
    rss.push(maxRssMiB);
  }
  return { runs, importMs: imports, totalMs: totals, maxRssMiB: rss };
}

/** The predict bench's cold-start line. */
export function coldStartRecord(cold: ColdStarts): Record<string, unknown> {
  return {
    measure: 'cold start (bundle import + first model load + first answer)',
    runs: cold.runs,
    importMsP50: round(percentile(cold.importMs, 50)),
    totalMsP50: round(percentile(cold.totalMs, 50)),
    totalMsMax: round(Math.max(...cold.totalMs)),
  };
}
