/**
 * `npm run bench -- load`: the local stack (`npm start` as a child, in a temp
 * data dir) under autocannon on 127.0.0.1, with valid and invalid requests
 * mixed as real traffic would be. Concurrency doubles from 1 until throughput
 * stops rising; each step reports req/s, latency and status codes (4xx are
 * the invalid requests, 5xx and connection errors must be zero). Then a soak
 * of 100,000 requests at the knee, with the server's RSS before, during and
 * after. Bounded: about five minutes on two cores, including the first
 * training run.
 *
 *   --step-seconds N    length of each concurrency step (default 5)
 *   --soak-requests N   requests in the soak (default 100000)
 *   --canary P          run all of it with a second version answering P% of
 *                       requests as a canary: both models loaded, the split,
 *                       the captures with both answers, the rollout timer
 *                       judging it. The candidate is an untrained MLP: it
 *                       costs what a trained one does.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Jimp } from 'jimp';
import { initBackend } from '#lib/backend';
import { loadMnist } from '#lib/training/mnist';
import { MAX_BATCH } from '#lib/predict-request';
import { TOKEN_FILE } from '../cli/local-token.ts';
import { benchMnistDir, type RunningStack, stackModelStore, stackRssMiB, startStack } from './local-stack.ts';
import { storeUntrainedVersion } from './untrained-version.ts';
import { writeNumber } from './numbers.ts';
import { canvasDrawing } from './rerender.ts';
import { machine, round } from './stats.ts';

const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

const CONCURRENCY = [1, 2, 4, 8, 16, 32, 64];
/** A step must beat the best so far by this much to count as still rising. */
const RISE = 1.05;
/** Two steps in a row that do not rise end the ramp: one could be noise. */
const FLAT_STEPS = 2;
/** The whole soak is abandoned past this, whatever its request count, to keep the run bounded. */
const SOAK_LIMIT_SECONDS = 240;

interface Kind {
  name: string;
  body: string;
  expect: number;
}

/** What goes round each connection, in order: mostly valid images, with every kind of refusal in between. */
async function requestMix(dataDir: string, mnistDir: string | undefined): Promise<Kind[]> {
  const { test } = await loadMnist({ dir: mnistDir, cacheDir: path.join(dataDir, 'mnist') });
  const image = (bytes: Buffer) => JSON.stringify({ image: bytes.toString('base64') });
  // Five different digits: a canary's split is by a hash of the body, so one body would go to one version only.
  const png = async (n: number) => {
    const digit = test.images.subarray(n * 784, (n + 1) * 784);
    const small = new Jimp({ width: 28, height: 28, color: 0xff });
    for (let i = 0; i < 784; i++) small.bitmap.data.set([digit[i]!, digit[i]!, digit[i]!, 255], i * 4);
    return { name: `28x28 PNG #${n + 1}`, body: image(await small.getBuffer('image/png')), expect: 200 };
  };
  const canvas = {
    name: '280x280 canvas PNG',
    body: image(await canvasDrawing(test.images.subarray(0, 784), 1)),
    expect: 200,
  };
  const number = await writeNumber(test, 5, 'gaps', 'canvas', 3);
  const blank = await new Jimp({ width: 280, height: 280, color: 0x00000000 }).getBuffer('image/png');
  // One canvas drawing in ten: its decode costs several small PNGs', and would otherwise be all the soak measures.
  return [
    await png(0),
    { name: 'bad JSON', body: '{"image": ', expect: 400 },
    await png(1),
    canvas,
    { name: 'bad base64', body: JSON.stringify({ image: 'not base64!!' }), expect: 400 },
    await png(2),
    { name: 'not an image', body: image(Buffer.from('hello, world')), expect: 415 },
    await png(3),
    {
      name: `batch of ${MAX_BATCH + 1}`,
      body: JSON.stringify({ images: new Array(MAX_BATCH + 1).fill('AAAA') }),
      expect: 413,
    },
    await png(4),
    {
      name: '5-digit number, canvas PNG, mode number',
      body: JSON.stringify({ image: number.image.toString('base64'), mode: 'number' }),
      expect: 200,
    },
    { name: 'blank canvas (no_ink)', body: image(blank), expect: 200 },
    {
      name: 'blank canvas, mode number',
      body: JSON.stringify({ image: blank.toString('base64'), mode: 'number' }),
      expect: 400,
    },
  ];
}

type Run = autocannon.Result;

function fire(
  url: string,
  kinds: Kind[],
  options: { connections: number; duration?: number; amount?: number },
): { done: Promise<Run>; stop: () => void } {
  let instance!: autocannon.Instance;
  const done = new Promise<Run>((resolve, reject) => {
    instance = autocannon(
      {
        url: `${url}/predict`,
        connections: options.connections,
        ...(options.amount ? { amount: options.amount } : { duration: options.duration }),
        timeout: 10,
        requests: kinds.map((kind) => ({
          method: 'POST',
          path: '/predict',
          headers: { 'content-type': 'application/json' },
          body: kind.body,
        })),
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
  return { done, stop: () => instance.stop() };
}

function summary(run: Run) {
  const byStatus = Object.fromEntries(
    Object.entries(run.statusCodeStats ?? {}).map(([status, stats]) => [status, stats.count ?? 0]),
  );
  return {
    requests: run.requests.total,
    requestsPerSecond: round(run.requests.total / run.duration, 0),
    p50Ms: run.latency.p50,
    p99Ms: run.latency.p99,
    byStatus,
    fourXx: run['4xx'],
    fiveXx: run['5xx'],
    errors: run.errors,
    timeouts: run.timeouts,
  };
}

/**
 * Every kind once, by itself, so the status split of a step can be read against what each kind must answer.
 * Returns how many of the valid bodies each version answered: a canary's split is by a hash of the body.
 */
async function checkKinds(url: string, kinds: Kind[]): Promise<Record<string, number>> {
  const answeredBy: Record<string, number> = {};
  for (const kind of kinds) {
    const response = await fetch(`${url}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: kind.body,
    });
    const answer = (await response.json()) as { modelVersion?: string };
    if (response.status !== kind.expect)
      throw new Error(`${kind.name} answered ${response.status}, expected ${kind.expect}`);
    if (answer.modelVersion) answeredBy[answer.modelVersion] = (answeredBy[answer.modelVersion] ?? 0) + 1;
  }
  const invalid = kinds.filter((kind) => kind.expect >= 400).length;
  emit({
    measure: 'request mix',
    perCycle: kinds.length,
    invalidShare: round(invalid / kinds.length),
    expect: Object.fromEntries(kinds.map((kind) => [kind.name, kind.expect])),
  });
  return answeredBy;
}

/** Stores a second version and makes it the canary through the operator route, as `npm run promote` would. */
async function setCanary(stack: RunningStack, dataDir: string, percent: number): Promise<string> {
  await initBackend();
  const bucket = await stackModelStore(stack, dataDir);
  const candidate = await storeUntrainedVersion(bucket.store).finally(() => bucket.close());
  const token = (await readFile(path.join(dataDir, TOKEN_FILE), 'utf8')).trim();
  const response = await fetch(`${stack.url}/promote`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ version: candidate, mode: 'canary', percent, reason: 'load bench' }),
  });
  if (!response.ok) throw new Error(`setting the canary answered ${response.status}: ${await response.text()}`);
  await untilEveryServerRuns(stack.url, candidate);
  return candidate;
}

/** Consecutive /health answers naming the candidate as running before the bench trusts that every server has it. */
const CANARY_CONFIRMATIONS = 20;
const CANARY_LIMIT_MS = 120_000;

/** Each request is a new connection, so the kernel spreads them over the server processes. */
async function untilEveryServerRuns(url: string, candidate: string): Promise<void> {
  const deadline = performance.now() + CANARY_LIMIT_MS;
  let confirmed = 0;
  while (confirmed < CANARY_CONFIRMATIONS) {
    if (performance.now() > deadline) throw new Error(`the servers did not all run ${candidate} within 120 s`);
    const health = (await (await fetch(`${url}/health`, { headers: { connection: 'close' } })).json()) as {
      candidate?: { version: string; state: string };
    };
    const running = health.candidate?.version === candidate && health.candidate.state === 'ready';
    confirmed = running ? confirmed + 1 : 0;
    if (!running) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export async function benchLoad(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'step-seconds': { type: 'string', default: '5' },
      'soak-requests': { type: 'string', default: '100000' },
      canary: { type: 'string' },
    },
    strict: true,
  });
  const stepSeconds = Number(values['step-seconds']);
  const soakRequests = Number(values['soak-requests']);
  if (!(stepSeconds > 0) || !(Number.isInteger(soakRequests) && soakRequests > 0))
    throw new Error('--step-seconds and --soak-requests must be positive numbers');
  const canaryPercent = values.canary === undefined ? undefined : Number(values.canary);
  if (canaryPercent !== undefined && !(Number.isInteger(canaryPercent) && canaryPercent >= 1 && canaryPercent <= 100))
    throw new Error('--canary takes a whole percentage from 1 to 100');

  emit({ bench: 'load', machine: machine() });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'digitnet-load-'));
  const mnistDir = benchMnistDir();
  const started = performance.now();
  // A canary is set after the start: the servers then re-read the pointer every few seconds rather than every minute.
  const stack = await startStack(dataDir, mnistDir, canaryPercent === undefined ? {} : { MODEL_REFRESH_SECONDS: '5' });
  const { child, url } = stack;
  try {
    emit({
      measure: 'local stack ready (first start: trains one epoch)',
      seconds: round((performance.now() - started) / 1000, 1),
      url,
      serverProcesses: stack.workers,
    });
    const kinds = await requestMix(dataDir, mnistDir);
    const candidate = canaryPercent === undefined ? undefined : await setCanary(stack, dataDir, canaryPercent);
    const answeredBy = await checkKinds(url, kinds);
    if (candidate) emit({ measure: 'canary', candidate, percent: canaryPercent, validBodiesAnsweredBy: answeredBy });
    await fire(url, kinds, { connections: 4, duration: 2 }).done;

    const steps: (ReturnType<typeof summary> & { connections: number })[] = [];
    let best = 0;
    let flat = 0;
    for (const connections of CONCURRENCY) {
      const step = { connections, ...summary(await fire(url, kinds, { connections, duration: stepSeconds }).done) };
      steps.push(step);
      emit({ measure: 'load step', seconds: stepSeconds, ...step });
      if (step.requestsPerSecond > best * RISE) flat = 0;
      else if (++flat >= FLAT_STEPS) break;
      best = Math.max(best, step.requestsPerSecond);
    }
    // The knee: the least concurrency that reaches (within the noise margin) the best throughput.
    const knee = steps.find((step) => step.requestsPerSecond * RISE >= best)!;
    emit({
      measure: 'knee',
      connections: knee.connections,
      requestsPerSecond: knee.requestsPerSecond,
      p50Ms: knee.p50Ms,
      p99Ms: knee.p99Ms,
    });

    const rssBefore = await stackRssMiB(child.pid!);
    const samples: number[] = [];
    const sampler = setInterval(
      () =>
        void stackRssMiB(child.pid!).then(
          (mib) => samples.push(mib),
          () => {},
        ),
      1000,
    );
    const soak = fire(url, kinds, { connections: knee.connections, amount: soakRequests });
    const limit = setTimeout(soak.stop, SOAK_LIMIT_SECONDS * 1000);
    const run = await soak.done;
    clearTimeout(limit);
    clearInterval(sampler);
    const rssAfter = await stackRssMiB(child.pid!);
    emit({
      measure: 'soak',
      connections: knee.connections,
      seconds: round(run.duration, 1),
      completed: run.requests.total >= soakRequests,
      ...summary(run),
      serverRssMiB: {
        before: rssBefore,
        after: rssAfter,
        min: Math.min(rssBefore, ...samples),
        max: Math.max(rssBefore, ...samples),
      },
    });
    if (candidate) {
      const pointer = await (await fetch(`${url}/model`)).json();
      emit({ measure: 'canary after the soak', candidate: pointer.candidate ?? null });
    }
  } finally {
    await stack.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
