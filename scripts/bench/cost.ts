/**
 * `npm run bench -- cost [--requests-per-cold-start N] [--memory 128,256,…] [--runs N]`:
 * what 1,000 predictions cost in the cloud, per input kind and Lambda memory
 * size, from what the predict handler does on this machine:
 *   - handler time: the real handler (functions/predict/handler.ts, wired as
 *     deployed: capture lines, EMF metrics, access log) in process, timed as
 *     the predict bench times it, stretched by each size's CPU share
 *     (cost-model.ts says how and why);
 *   - cold starts: the built bundle in fresh processes (the predict bench's
 *     measure), with their peak memory, which decides the sizes it fits in;
 *   - S3 GETs per cold start: counted on the wire during the handler's first
 *     request (the pointer and the serving version's files);
 *   - CloudWatch Logs: the bytes and lines the handler writes per request,
 *     read off its stdout and stderr, plus Lambda's own START/END/REPORT lines;
 *   - API Gateway: the request and response sizes.
 * Prices come from prices.ts (dated; to be checked against AWS's pages). A cold
 * start is assumed once per `--requests-per-cold-start` requests (100 unless
 * given). Prints JSON lines, then the same as tables, and the memory that
 * cost-model.ts's rule (chooseMemory) picks for the predict function.
 */
import { randomUUID } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Handler } from '#lib/http';
import { storageEnv } from '#lib/storage/storage';
import { STACK_DEFAULTS } from '../../infra/config.ts';
import {
  billedMs,
  chooseMemory,
  costPerThousand,
  cpuShare,
  FULL_VCPU_MIB,
  meanBilledMs,
  scaledMs,
} from './cost-model.ts';
import { type LambdaArch, PRICES } from './prices.ts';
import { canvasDrawing } from './rerender.ts';
import { batchBody, coldStart, emit, event, imageBody, servingSetUp, timeHandler, uploads } from './serving.ts';
import { machine, percentile, round } from './stats.ts';

/** The deployed functions' architecture (infra/function.ts); x86 is priced beside it. */
const DEPLOYED_ARCH: LambdaArch = 'arm64';
/** A size fits when the bundle's peak resident memory, plus this much, is within it. */
const FIT_HEADROOM = 1.25;

interface Kind {
  name: string;
  /** Images per request. */
  batch: number;
  body: string;
}

interface Written {
  bytes: number;
  lines: number;
  /** The same by line: access log, capture, metrics (EMF), anything else. */
  byLine: Record<string, { bytes: number; lines: number }>;
}

/** Which of the handler's lines this is, by the fields each kind carries. */
function lineKind(line: string): string {
  if (line.includes('"type":"capture"')) return 'capture';
  if (line.includes('"message":"metrics"')) return 'metrics (EMF)';
  if (line.includes('"message":"request"')) return 'access';
  return 'other';
}

interface Measured extends Kind {
  /** Handler milliseconds per request, one core. */
  times: number[];
  /** What one warm request writes to stdout and stderr. */
  written: Written;
  /** The larger of the request's and the response's body. */
  payloadBytes: number;
}

/**
 * Runs `task` with stdout and stderr counted instead of written: what the
 * handler would send to CloudWatch Logs (Lambda ships both, a line an event).
 */
async function counted<T>(task: () => Promise<T>): Promise<{ result: T; written: Written }> {
  const chunks: Buffer[] = [];
  const { stdout, stderr } = process;
  const originals = [stdout.write, stderr.write] as const;
  // Only kept, not parsed, while the task runs: the timed loops pass through here too.
  const keep = (chunk: string | Uint8Array) => chunks.push(Buffer.from(chunk)) > 0;
  stdout.write = keep as typeof stdout.write;
  stderr.write = keep as typeof stderr.write;
  let result: T;
  try {
    result = await task();
  } finally {
    [stdout.write, stderr.write] = originals;
  }
  const written: Written = { bytes: 0, lines: 0, byLine: {} };
  for (const line of Buffer.concat(chunks).toString('utf8').split('\n').slice(0, -1)) {
    const bytes = Buffer.byteLength(`${line}\n`);
    const kind = written.byLine[lineKind(line)] ?? { bytes: 0, lines: 0 };
    written.byLine[lineKind(line)] = kind;
    kind.bytes += bytes;
    kind.lines++;
    written.bytes += bytes;
    written.lines++;
  }
  return { result, written };
}

/** Requests sent to `host` while `task` runs, by method (S3 bills HEAD as a GET). */
async function s3Requests<T>(
  host: string,
  task: () => Promise<T>,
): Promise<{ result: T; byMethod: Record<string, number> }> {
  const byMethod: Record<string, number> = {};
  const onStart = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    if (request.host === host || request.getHeader('host') === host)
      byMethod[request.method] = (byMethod[request.method] ?? 0) + 1;
  };
  dc.subscribe('http.client.request.start', onStart);
  try {
    return { result: await task(), byMethod };
  } finally {
    dc.unsubscribe('http.client.request.start', onStart);
  }
}

/**
 * Lambda's own lines for one invocation, in their documented text format (the
 * handler's lines are measured; these are not, being written outside it):
 * START, END and REPORT, and on a cold start INIT_START and REPORT's Init Duration.
 */
function platformLines(memoryMiB: number, cold: boolean): string[] {
  const id = randomUUID();
  const report = `REPORT RequestId: ${id}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: ${memoryMiB} MB\tMax Memory Used: 180 MB\t`;
  return [
    ...(cold
      ? [
          `INIT_START Runtime Version: nodejs:22.v48\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:${'0'.repeat(64)}`,
        ]
      : []),
    `START RequestId: ${id} Version: $LATEST`,
    `END RequestId: ${id}`,
    cold ? `${report}Init Duration: 234.56 ms\t` : report,
  ];
}
const linesWritten = (lines: string[]) => ({
  bytes: lines.reduce((sum, line) => sum + Buffer.byteLength(`${line}\n`), 0),
  lines: lines.length,
});

const usd = (value: number) => `$${value < 0.01 ? value.toPrecision(3) : value.toFixed(4)}`;
const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(1));
const row = (cells: (string | number)[]) => process.stdout.write(`| ${cells.join(' | ')} |\n`);

export async function benchCost(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'requests-per-cold-start': { type: 'string', default: '100' },
      memory: { type: 'string', default: '128,256,512,1024,1769,3008' },
      runs: { type: 'string', default: '300' },
    },
  });
  const requestsPerColdStart = Number(values['requests-per-cold-start']);
  const memories = values.memory.split(',').map(Number);
  const runs = Number(values.runs);
  if (!Number.isInteger(requestsPerColdStart) || requestsPerColdStart < 1)
    throw new Error(`--requests-per-cold-start must be a whole number ≥ 1, got ${values['requests-per-cold-start']}`);
  if (memories.some((m) => !Number.isInteger(m) || m < 128 || m > 10_240))
    throw new Error(`--memory must be Lambda sizes from 128 to 10240 MB, got ${values.memory}`);
  if (!Number.isInteger(runs) || runs < 10) throw new Error(`--runs must be a whole number ≥ 10, got ${values.runs}`);

  emit({ bench: 'cost', machine: machine(), loadAverage: os.loadavg().map((l) => round(l)) });
  emit({
    measure: 'assumptions',
    prices: { asOf: PRICES.asOf, region: PRICES.region, checked: PRICES.checked, sources: PRICES.sources },
    cpuScaling: `handler and cold-start times measured on one full core here, divided by min(1, memory / ${FULL_VCPU_MIB})`,
    requestsPerColdStart,
    arch: `${DEPLOYED_ARCH} (deployed; Graviton assumed as fast as this x86 core), x86_64 priced beside it`,
    fit: `a size fits when the bundle's peak RSS × ${FIT_HEADROOM} is within it`,
  });

  const { dir, s3, mnist } = await servingSetUp();
  const storage = storageEnv(s3);
  const digit = mnist.test.images.subarray(0, 784);
  // The predict bench's uploads, a canvas twice the page's, and batches of the small PNG.
  const images = await uploads(digit);
  const png = images['28x28 PNG']!;
  const kinds: Kind[] = [
    { name: '28x28 PNG', batch: 1, body: imageBody(png) },
    { name: '280x280 canvas PNG', batch: 1, body: imageBody(images['280x280 canvas PNG']!) },
    { name: '560x560 canvas PNG', batch: 1, body: imageBody(await canvasDrawing(digit, 1, 560)) },
    { name: '320x240 JPEG photo', batch: 1, body: imageBody(images['320x240 JPEG photo']!) },
    { name: 'batch of 8 28x28 PNGs', batch: 8, body: batchBody(png, 8) },
    { name: 'batch of 32 28x28 PNGs', batch: 32, body: batchBody(png, 32) },
  ];

  const cold = await coldStart(
    dir,
    storage,
    5,
    kinds.map((kind) => kind.body),
  );
  const coldMs = percentile(cold.totalMs, 50);
  const peakRssMiB = Math.max(...cold.maxRssMiB);
  emit({
    measure: 'cold start (bundle import + first model load + first answer), one core',
    runs: cold.runs,
    importMsP50: round(percentile(cold.importMs, 50)),
    totalMsP50: round(coldMs),
    totalMsMax: round(Math.max(...cold.totalMs)),
    peakRssMiB: round(peakRssMiB, 1),
  });

  // The handler as deployed: its module reads this configuration once, at import.
  Object.assign(process.env, storage, {
    STAGE: 'dev',
    LOG_LEVEL: 'info',
    CAPTURE_MODE: 'log',
    CAPTURE_SAMPLE_RATE: '1',
    METRICS: 'emf',
    MODEL_REFRESH_SECONDS: '60',
  });
  const s3Host = new URL(s3.endpoint).host;
  const request = (body: string) => (handler: Handler) => handler(event(body), { awsRequestId: randomUUID() });
  const first = await counted(() =>
    s3Requests(s3Host, async () => {
      const { handler } = await import('../../functions/predict/handler.ts');
      const answer = await request(kinds[0]!.body)(handler);
      if (answer.statusCode !== 200) throw new Error(String(answer.body));
      return handler;
    }),
  );
  const handler = first.result.result;
  const s3ByMethod = first.result.byMethod;
  const s3GetsPerColdStart = (s3ByMethod.GET ?? 0) + (s3ByMethod.HEAD ?? 0);
  emit({ measure: 'S3 requests of a cold start (pointer and serving version)', byMethod: s3ByMethod });

  const measured: Measured[] = [];
  for (const kind of kinds) {
    const once = await counted(() => request(kind.body)(handler));
    if (once.result.statusCode !== 200) throw new Error(String(once.result.body));
    // Timed with its output kept in memory, not written: no terminal or pipe in the figure.
    const times = (await counted(() => timeHandler(handler, kind.body, runs))).result;
    measured.push({
      ...kind,
      times,
      written: once.written,
      payloadBytes: Math.max(Buffer.byteLength(kind.body), Buffer.byteLength(String(once.result.body))),
    });
  }
  // What the first request wrote beyond a warm one of the same kind: the module's and the model load's lines.
  const coldExtra = {
    bytes: first.written.bytes - measured[0]!.written.bytes,
    lines: first.written.lines - measured[0]!.written.lines,
  };
  emit({
    measure: 'CloudWatch Logs per request, from the handler',
    coldStartExtra: coldExtra,
    lambdaPlatformLinesPerRequest: linesWritten(platformLines(1769, false)),
    perKind: Object.fromEntries(measured.map((m) => [m.name, m.written])),
  });

  const rows = memories.map((memoryMiB) => {
    const fits = peakRssMiB * FIT_HEADROOM <= memoryMiB;
    const coldStartBilledMs = billedMs(scaledMs(coldMs, memoryMiB));
    const warmPlatform = linesWritten(platformLines(memoryMiB, false));
    const coldPlatform = linesWritten(platformLines(memoryMiB, true));
    const perKind = measured.map((m) => {
      const input = {
        memoryMiB,
        predictionsPerRequest: m.batch,
        meanBilledMs: meanBilledMs(m.times, memoryMiB),
        coldStartBilledMs,
        requestsPerColdStart,
        s3GetsPerColdStart,
        apiPayloadBytes: m.payloadBytes,
        logBytesPerRequest: m.written.bytes + warmPlatform.bytes,
        logEventsPerRequest: m.written.lines + warmPlatform.lines,
        coldLogBytes: coldExtra.bytes + coldPlatform.bytes - warmPlatform.bytes,
        coldLogEvents: coldExtra.lines + coldPlatform.lines - warmPlatform.lines,
      };
      const cost = (arch: LambdaArch) => costPerThousand({ ...input, arch }, PRICES);
      return {
        kind: m.name,
        batch: m.batch,
        p50Ms: scaledMs(percentile(m.times, 50), memoryMiB),
        p99Ms: scaledMs(percentile(m.times, 99), memoryMiB),
        logBytesPerRequest: input.logBytesPerRequest,
        deployed: cost(DEPLOYED_ARCH),
        x86: cost('x86_64'),
      };
    });
    return { memoryMiB, share: cpuShare(memoryMiB), fits, coldStartMs: scaledMs(coldMs, memoryMiB), perKind };
  });

  for (const r of rows) {
    for (const k of r.perKind) {
      emit({
        measure: 'cost per 1,000',
        kind: k.kind,
        memoryMiB: r.memoryMiB,
        cpuShare: round(r.share, 3),
        fits: r.fits,
        p50Ms: round(k.p50Ms, 3),
        p99Ms: round(k.p99Ms, 3),
        coldStartMs: round(r.coldStartMs, 1),
        logBytesPerRequest: k.logBytesPerRequest,
        [`${DEPLOYED_ARCH}PerThousandRequests`]: Object.fromEntries(
          Object.entries(k.deployed).map(([key, value]) => [key, Number(value.toPrecision(4))]),
        ),
        [`${DEPLOYED_ARCH}PerThousandPredictions`]: Number(k.deployed.perThousandPredictions.toPrecision(4)),
        x86PerThousandPredictions: Number(k.x86.perThousandPredictions.toPrecision(4)),
      });
    }
  }

  const choice = chooseMemory(
    rows.map((r) => ({
      memoryMiB: r.memoryMiB,
      fits: r.fits,
      kinds: r.perKind.map((k) => ({ cost: k.deployed.perThousandPredictions, p99Ms: k.p99Ms })),
    })),
  );
  emit({
    measure: 'predict memory',
    chosenMiB: choice.memoryMiB,
    stackDefaultMiB: STACK_DEFAULTS.predictMemoryMiB,
    reason: choice.reason,
  });

  // Interference from other processes only ever adds time: a busy machine inflates p99 most.
  emit({ measure: 'load average at the end', loadAverage: os.loadavg().map((l) => round(l)) });

  // The same as tables, for reading.
  const chosen = rows.find((r) => r.memoryMiB === choice.memoryMiB)!;
  process.stdout.write(
    `\nCost of 1,000 predictions (${DEPLOYED_ARCH}, us-east-1, prices of ${PRICES.asOf}: ${PRICES.checked}) ` +
      `and p99 handler latency, one cold start per ${requestsPerColdStart} requests.\n` +
      `Times were measured on one full core of this machine and divided by min(1, memory / ${FULL_VCPU_MIB} MB), ` +
      `Lambda's CPU share: this machine cannot impose that quota itself.\n\n`,
  );
  row(['memory', 'CPU share', 'cold start', ...kinds.map((k) => k.name)]);
  row(['---:', '---:', '---:', ...kinds.map(() => '---:')]);
  for (const r of rows) {
    const cells = r.perKind.map((k) => `${usd(k.deployed.perThousandPredictions)} · ${ms(k.p99Ms)} ms`);
    const label = `${r.memoryMiB} MB${r.fits ? '' : ' (does not fit)'}${r === chosen ? ' ◀' : ''}`;
    row([label, r.share.toFixed(2), `${ms(r.coldStartMs)} ms`, ...cells]);
  }

  process.stdout.write(`\nWhere it goes at ${chosen.memoryMiB} MB, per 1,000 requests (${DEPLOYED_ARCH}):\n\n`);
  row([
    'kind',
    'Lambda requests',
    'Lambda duration',
    'HTTP API',
    'S3 GETs',
    'Logs',
    'total',
    'per 1,000 predictions',
    'x86 per 1,000 predictions',
    'log bytes / request',
    'p50',
    'p99',
  ]);
  row(['---', ...new Array(11).fill('---:')]);
  for (const k of chosen.perKind) {
    const c = k.deployed;
    row([
      k.kind,
      usd(c.lambdaRequests),
      usd(c.lambdaDuration),
      usd(c.apiGateway),
      usd(c.s3Gets),
      usd(c.logs),
      usd(c.perThousandRequests),
      usd(c.perThousandPredictions),
      usd(k.x86.perThousandPredictions),
      k.logBytesPerRequest,
      `${ms(k.p50Ms)} ms`,
      `${ms(k.p99Ms)} ms`,
    ]);
  }

  process.stdout.write(`\nHow cost and latency grow, at ${chosen.memoryMiB} MB:\n\n`);
  row(['request', 'images', 'per 1,000 predictions', 'per 1,000 requests', 'p50', 'p99', 'p50 per image']);
  row(['---', '---:', '---:', '---:', '---:', '---:', '---:']);
  const growth = [
    '28x28 PNG',
    'batch of 8 28x28 PNGs',
    'batch of 32 28x28 PNGs',
    '280x280 canvas PNG',
    '560x560 canvas PNG',
  ];
  for (const name of growth) {
    const k = chosen.perKind.find((p) => p.kind === name)!;
    row([
      name,
      k.batch,
      usd(k.deployed.perThousandPredictions),
      usd(k.deployed.perThousandRequests),
      `${ms(k.p50Ms)} ms`,
      `${ms(k.p99Ms)} ms`,
      `${ms(k.p50Ms / k.batch)} ms`,
    ]);
  }

  process.stdout.write(
    `\nPredict memory: ${choice.memoryMiB} MB (the stack's default is ${STACK_DEFAULTS.predictMemoryMiB} MB). Rule: ${choice.reason}.\n` +
      `Cold start: ${ms(coldMs)} ms on one core (p50 of ${cold.runs}), peak RSS ${peakRssMiB.toFixed(0)} MiB; ` +
      `${s3GetsPerColdStart} S3 GETs (a candidate adds its three files). The pointer is re-read at most once a ` +
      `minute per warm container (one conditional GET: ${usd((1440 * PRICES.s3.perThousandGets) / 1000)} per container-day), ` +
      `not counted above.\n` +
      `Logs: the handler's own lines as measured (access, capture per image, EMF metrics) plus Lambda's START, END ` +
      `and REPORT lines, each with ${PRICES.cloudWatchLogs.eventOverheadBytes} bytes of event overhead.\n` +
      'Not counted: free tiers, Lambda time outside the handler (event and response handling by the runtime), ' +
      'the capture delivery (subscription, Firehose, S3 PUTs), custom metrics (per metric-month, not per request), ' +
      'data transfer, and the other functions.\n',
  );
  await s3.close();
}
