/**
 * `npm run bench -- predict`: the prediction path on this machine.
 *   - cold start: the built bundle imported in a fresh process, through its
 *     first answer (module load + first model load from the embedded S3);
 *   - handler latency (p50/p99) per image kind, beside a bare jimp decode of
 *     the same image, the floor everything else must stay close to; and for a
 *     5-digit number in number mode, against one digit of the same kind;
 *   - a batch of 32;
 *   - the model alone on one preprocessed image, for each architecture;
 *   - HTTP throughput with autocannon on 127.0.0.1 against `npm start`.
 */
import { openSync, writeSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { Jimp } from 'jimp';
import { classify } from '#lib/classify';
import { BucketCaptureSink, type CaptureSink, logCaptureSink } from '#lib/live/capture-sink';
import { createLogger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { ModelCache } from '#lib/model-cache';
import { ARCHS, createModel } from '#lib/training/model';
import { storageEnv } from '#lib/storage/storage';
import { versionName } from '#lib/storage/store';
import { makeHandler } from '../../functions/predict/app.ts';
import { startStack } from './local-stack.ts';
import {
  batchBody,
  coldStart,
  coldStartRecord,
  emit,
  imageBody,
  servingSetUp,
  smallPng,
  timeHandler,
  uploads,
} from './serving.ts';
import { writeNumber } from './numbers.ts';
import { storeUntrainedVersion } from './untrained-version.ts';
import { machine, percentile, round, time } from './stats.ts';

async function throughput(dataDir: string, bodies: Record<string, string>): Promise<void> {
  const stack = await startStack(dataDir, process.env.MNIST_DIR && path.resolve(process.env.MNIST_DIR));
  try {
    for (const [name, body] of Object.entries(bodies)) {
      for (const connections of [4, 16]) {
        const result = await autocannon({
          url: `${stack.url}/predict`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          connections,
          duration: 8,
        });
        emit({
          measure: `HTTP throughput, ${name}`,
          serverProcesses: stack.workers,
          connections,
          requestsPerSecond: round(result.requests.average, 0),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors,
        });
      }
    }
  } finally {
    await stack.stop();
  }
}

export async function benchPredict(): Promise<void> {
  emit({ bench: 'predict', machine: machine() });
  const { backend, dir, s3, store, mnist } = await servingSetUp();

  emit(coldStartRecord(await coldStart(dir, storageEnv(s3))));

  const logger = createLogger({}, () => {});
  const handler = makeHandler({
    cache: new ModelCache({ store, refreshSeconds: 60, logger }),
    logger,
    backendReady: async () => backend,
    page: async () => '',
  });
  const digit = mnist.test.images.subarray(0, 784);
  const images = await uploads(digit);
  const bodies: Record<string, string> = {};
  const handlerP50 = new Map<string, number>();
  for (const [name, bytes] of Object.entries(images)) {
    const body = imageBody(bytes);
    bodies[name] = body;
    const decode = await time(() => Jimp.fromBuffer(bytes), 300);
    const handle = await timeHandler(handler, body, 300);
    handlerP50.set(name, percentile(handle, 50));
    emit({
      measure: `handler latency, ${name}`,
      bytes: bytes.length,
      handlerP50Ms: round(percentile(handle, 50), 3),
      handlerP99Ms: round(percentile(handle, 99), 3),
      bareJimpDecodeP50Ms: round(percentile(decode, 50), 3),
      ratioToDecode: round(percentile(handle, 50) / percentile(decode, 50)),
    });
  }
  // A number costs its segmentation and one model input per digit on top of a digit's decode.
  for (const kind of ['canvas', 'photo'] as const) {
    const number = await writeNumber(mnist.test, 5, 'gaps', kind, 11);
    const body = JSON.stringify({ image: number.image.toString('base64'), mode: 'number' });
    const handle = await timeHandler(handler, body, 200);
    const single = handlerP50.get(kind === 'canvas' ? '280x280 canvas PNG' : '320x240 JPEG photo')!;
    emit({
      measure: `handler latency, 5-digit number (${kind}, mode number)`,
      bytes: number.image.length,
      handlerP50Ms: round(percentile(handle, 50), 3),
      handlerP99Ms: round(percentile(handle, 99), 3),
      ratioToOneDigit: round(percentile(handle, 50) / single),
    });
  }
  const batchTimes = await timeHandler(handler, batchBody(images['28x28 PNG']!, 32), 100);
  emit({
    measure: 'handler latency, batch of 32 28x28 PNGs',
    p50Ms: round(percentile(batchTimes, 50)),
    p99Ms: round(percentile(batchTimes, 99)),
  });
  // Latency does not depend on the weights, so untrained models stand in for trained ones,
  // stored and loaded as the service loads a version (inference-model.ts).
  const input = Float32Array.from(digit, (value) => value / 255);
  const { artifacts: _, ...metrics } = (await store.metrics((await store.latest())!.version))!;
  for (const [i, arch] of ARCHS.entries()) {
    const created = createModel({ arch });
    const version = versionName(arch, new Date(Date.now() + (i + 1) * 1000));
    await store.save(created, { ...metrics, version, arch, params: created.countParams() });
    created.dispose();
    const { model } = await store.load(version);
    const times = await time(async () => void classify(model, [input]), 300);
    emit({
      measure: 'model latency, one image',
      arch,
      params: model.countParams(),
      p50Ms: round(percentile(times, 50), 3),
      p99Ms: round(percentile(times, 99), 3),
    });
    model.dispose();
  }
  await s3.close();

  await throughput(dir, { '28x28 PNG': bodies['28x28 PNG']!, '280x280 canvas PNG': bodies['280x280 canvas PNG']! });
}

interface Variant {
  name: string;
  handler: ReturnType<typeof makeHandler>;
  /** Run after each variant's round, outside the timing (a buffered sink's flush). */
  settle?: () => Promise<unknown>;
}

/**
 * Each body through each variant, 200 requests a round; rounds alternate the
 * variants, so a warm-up or a busy moment does not land on one of them alone.
 * Emits the median of the rounds' p50s, and what it adds to the first variant's.
 */
async function compareVariants(measure: string, key: string, variants: Variant[], bodies: Record<string, string>) {
  const ROUNDS = 5;
  for (const [bodyName, body] of Object.entries(bodies)) {
    const p50s = new Map<string, number[]>(variants.map(({ name }) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (const { name, handler, settle } of variants) {
        const times = await timeHandler(handler, body, 200);
        await settle?.();
        if (round > 0) p50s.get(name)!.push(percentile(times, 50));
      }
    }
    const baseline = percentile(p50s.get(variants[0]!.name)!, 50);
    for (const [name, values] of p50s) {
      const p50 = percentile(values, 50);
      emit({
        measure: `${measure}, ${bodyName}`,
        [key]: name,
        rounds: ROUNDS,
        p50Ms: round(p50, 3),
        addedP50Ms: round(p50 - baseline, 3),
        addedPerPredictionMs: round((p50 - baseline) / (bodyName === 'batch of 32' ? 32 : 1), 4),
      });
    }
  }
}

async function comparisonBodies(mnist: Awaited<ReturnType<typeof servingSetUp>>['mnist']) {
  const png = await smallPng(mnist.test.images.subarray(0, 784));
  return { 'one 28x28 PNG': imageBody(png), 'batch of 32': batchBody(png, 32) };
}

/**
 * `npm run bench -- capture`: what recording each prediction adds to the
 * handler, for one image and a batch of 32: no capture, the cloud's log line
 * (written synchronously, as Lambda's stdout is, here to /dev/null), and the
 * local stack's buffered bucket writes.
 */
export async function benchCapture(): Promise<void> {
  emit({ bench: 'capture', machine: machine() });
  const { backend, s3, objects, store, mnist } = await servingSetUp();
  const logger = createLogger({}, () => {});
  const devNull = openSync('/dev/null', 'w');
  const sinks: Record<string, CaptureSink | undefined> = {
    none: undefined,
    'log line (cloud)': logCaptureSink((line) => void writeSync(devNull, `${line}\n`)),
    'bucket, batched (local)': new BucketCaptureSink(objects, {
      maxRecords: 500,
      flushSeconds: 5,
      writerId: 'bench',
      logger,
    }),
  };
  const variants = Object.entries(sinks).map(([name, sink]) => ({
    name,
    settle: () => sink?.flush() ?? Promise.resolve(),
    handler: makeHandler({
      cache: new ModelCache({ store, refreshSeconds: 60, logger }),
      logger,
      backendReady: async () => backend,
      page: async () => '',
      capture: sink && { sink, sampleRate: 1 },
    }),
  }));
  await compareVariants('handler latency with capture', 'capture', variants, await comparisonBodies(mnist));
  await s3.close();
}

/**
 * `npm run bench -- metrics`: what the EMF metrics line adds to the handler.
 * Both variants log as in Lambda (the access line, written synchronously, here
 * to /dev/null); one also records and writes its metrics line.
 */
export async function benchMetrics(): Promise<void> {
  emit({ bench: 'metrics', machine: machine() });
  const { backend, s3, store, mnist } = await servingSetUp();
  const devNull = openSync('/dev/null', 'w');
  const logger = createLogger({ service: 'digitnet' }, (line) => void writeSync(devNull, `${line}\n`), 'info');
  const variants = (['off', 'emf'] as const).map((mode) => ({
    name: mode,
    handler: makeHandler({
      cache: new ModelCache({ store, refreshSeconds: 60, logger }),
      logger,
      backendReady: async () => backend,
      page: async () => '',
      metrics: { sink: createMetrics(mode, { stage: 'dev', component: 'predict' }), lowConfidenceThreshold: 0.6 },
    }),
  }));
  await compareVariants('handler latency with metrics', 'metrics', variants, await comparisonBodies(mnist));
  // The handler's run-to-run spread is larger than one line's cost, so the line is also timed alone:
  // what a /predict request records, built and written, 1,000 lines per sample.
  const metrics = createMetrics('emf', { stage: 'dev', component: 'predict' });
  const byVersion = { modelVersion: '20261203T000000Z-mlp' };
  const lines = await time(() => {
    for (let i = 0; i < 1000; i++) {
      metrics
        .begin()
        .add('Latency', 0.43, 'Milliseconds')
        .add('Predictions', 1, 'Count', byVersion)
        .add('Confidence', 0.97, 'None', byVersion)
        .add('LowConfidence', 0, 'Count', byVersion)
        .flush(logger);
    }
  }, 50);
  emit({
    measure: 'one /predict metrics line alone, built and written to /dev/null',
    p50Ms: round(percentile(lines, 50) / 1000, 4),
    p99Ms: round(percentile(lines, 99) / 1000, 4),
  });
  await s3.close();
}

/** `npm run bench -- candidate`: what a shadow candidate adds to the handler (both models run on every request). */
export async function benchCandidate(): Promise<void> {
  emit({ bench: 'candidate', machine: machine() });
  const { backend, s3, store, mnist } = await servingSetUp();
  const logger = createLogger({}, () => {});
  const candidate = await storeUntrainedVersion(store);
  const devNull = openSync('/dev/null', 'w');
  const sink = logCaptureSink((line) => void writeSync(devNull, `${line}\n`));
  const handlerFor = (cache: ModelCache) =>
    makeHandler({
      cache,
      logger,
      backendReady: async () => backend,
      page: async () => '',
      capture: { sink, sampleRate: 1 },
    });
  // Each cache reads the pointer once: the first before the candidate is set, the second after; neither re-reads it.
  const without = new ModelCache({ store, refreshSeconds: 3600, logger });
  await without.get();
  await store.setCandidate({ version: candidate, mode: 'shadow' });
  const shadowed = new ModelCache({ store, refreshSeconds: 3600, logger });
  await shadowed.get();
  await shadowed.candidateSettled();
  if (!(await shadowed.get()).candidate) throw new Error('the shadow candidate did not load');
  const handlers = { none: handlerFor(without), shadow: handlerFor(shadowed) };
  const bodies = await comparisonBodies(mnist);
  // Rounds alternate the variants, so a warm-up or a busy moment does not land on one of them alone.
  const ROUNDS = 5;
  for (const [bodyName, body] of Object.entries(bodies)) {
    const p50s = new Map<string, number[]>(Object.keys(handlers).map((name) => [name, []]));
    for (let round = 0; round <= ROUNDS; round++) {
      for (const [name, handler] of Object.entries(handlers)) {
        const times = await timeHandler(handler, body, 200);
        if (round > 0) p50s.get(name)!.push(percentile(times, 50));
      }
    }
    const baseline = percentile(p50s.get('none')!, 50);
    for (const [name, values] of p50s) {
      const p50 = percentile(values, 50);
      emit({
        measure: `handler latency with a candidate, ${bodyName}`,
        candidate: name,
        rounds: ROUNDS,
        p50Ms: round(p50, 3),
        addedP50Ms: round(p50 - baseline, 3),
      });
    }
  }
  await s3.close();
}
