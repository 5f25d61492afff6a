/**
 * The cost bench's arithmetic, pure: measured times and bytes in, dollars out
 * (`npm run bench -- cost` measures; test/bench-cost.test.ts checks the sums).
 *
 * Lambda gives a function CPU in proportion to its memory, one full vCPU at
 * 1,769 MB. This machine cannot impose such a quota, so a time measured on one
 * whole core is stretched by that share: ms / min(1, memory / 1769). Above
 * 1,769 MB a second vCPU arrives, which a single-threaded handler (tfjs turns
 * wasm threads off under Node) cannot use, so its time stays the same.
 */
import { GB, type LambdaArch, type PriceTable } from './prices.ts';

/** The memory (MB) at which a Lambda function has one full vCPU. */
export const FULL_VCPU_MIB = 1769;

export const cpuShare = (memoryMiB: number) => Math.min(1, memoryMiB / FULL_VCPU_MIB);

/** A time measured on one whole core, as it would take with `memoryMiB`'s share of one. */
export const scaledMs = (ms: number, memoryMiB: number) => ms / cpuShare(memoryMiB);

/** Lambda bills each invocation's duration rounded up to the next millisecond. */
export const billedMs = (ms: number) => Math.max(1, Math.ceil(ms));

/** The mean billed duration of these one-core samples at `memoryMiB`: each rounded on its own, as each is billed. */
export function meanBilledMs(samples: readonly number[], memoryMiB: number): number {
  if (samples.length === 0) throw new Error('no samples');
  return samples.reduce((sum, ms) => sum + billedMs(scaledMs(ms, memoryMiB)), 0) / samples.length;
}

/** API Gateway's HTTP API counts one request per started 512 KB of it. */
export const apiGatewayUnits = (payloadBytes: number, incrementBytes: number) =>
  Math.max(1, Math.ceil(payloadBytes / incrementBytes));

export interface CostInput {
  memoryMiB: number;
  arch: LambdaArch;
  /** Images per request (a batch's size). */
  predictionsPerRequest: number;
  /** A warm request's mean billed duration at this memory (meanBilledMs). */
  meanBilledMs: number;
  /**
   * A cold start's billed duration at this memory: init (module load) and the
   * first model load. Lambda bills the init phase like any other time since
   * 2025-08-01, managed runtimes included.
   */
  coldStartBilledMs: number;
  /** One cold start per this many requests. */
  requestsPerColdStart: number;
  /** S3 GETs one cold start makes (the pointer and the serving version's files). */
  s3GetsPerColdStart: number;
  /** The larger of a request's and its response's body, for API Gateway's metering. */
  apiPayloadBytes: number;
  /** What one warm request writes to CloudWatch Logs: bytes (lines with their newline) and lines. */
  logBytesPerRequest: number;
  logEventsPerRequest: number;
  /** What a cold start writes on top. */
  coldLogBytes: number;
  coldLogEvents: number;
}

/** US dollars per 1,000 requests, by where they go; `perThousandPredictions` divides by the batch size. */
export interface CostBreakdown {
  lambdaRequests: number;
  lambdaDuration: number;
  apiGateway: number;
  s3Gets: number;
  logs: number;
  perThousandRequests: number;
  perThousandPredictions: number;
}

export function costPerThousand(input: CostInput, prices: PriceTable): CostBreakdown {
  const lambda = prices.lambda[input.arch];
  const coldShare = 1 / input.requestsPerColdStart;
  const gb = input.memoryMiB / 1024;
  const seconds = (input.meanBilledMs + coldShare * input.coldStartBilledMs) / 1000;
  const logs = prices.cloudWatchLogs;
  const logBytes =
    input.logBytesPerRequest +
    input.logEventsPerRequest * logs.eventOverheadBytes +
    coldShare * (input.coldLogBytes + input.coldLogEvents * logs.eventOverheadBytes);
  const perRequest = {
    lambdaRequests: lambda.perMillionRequests / 1e6,
    lambdaDuration: gb * seconds * lambda.perGbSecond,
    apiGateway:
      (apiGatewayUnits(input.apiPayloadBytes, prices.apiGatewayHttp.meteringIncrementBytes) *
        prices.apiGatewayHttp.perMillionRequests) /
      1e6,
    s3Gets: (coldShare * input.s3GetsPerColdStart * prices.s3.perThousandGets) / 1000,
    logs: (logBytes / GB) * logs.perGbIngested,
  };
  const total = Object.values(perRequest).reduce((sum, value) => sum + value, 0);
  return {
    lambdaRequests: perRequest.lambdaRequests * 1000,
    lambdaDuration: perRequest.lambdaDuration * 1000,
    apiGateway: perRequest.apiGateway * 1000,
    s3Gets: perRequest.s3Gets * 1000,
    logs: perRequest.logs * 1000,
    perThousandRequests: total * 1000,
    perThousandPredictions: (total * 1000) / input.predictionsPerRequest,
  };
}

export interface MemoryOption {
  memoryMiB: number;
  /** Whether the function fits in this memory at all. */
  fits: boolean;
  /** Per input kind, in the same order for every option: cost per 1,000 predictions, and p99 latency. */
  kinds: { cost: number; p99Ms: number }[];
}

export interface MemoryChoice {
  memoryMiB: number;
  /** The sizes within the cost tolerance, smallest first. */
  affordable: number[];
  reason: string;
}

/**
 * The memory to run the predict function with, by this rule:
 *   1. only sizes the function fits in;
 *   2. affordable: for every input kind, at most `costTolerance` (10%) above
 *      that kind's cheapest size (if none is, the sizes nearest to that);
 *   3. of those, the lowest p99 latency for the slowest kind (a page waits on
 *      its worst requests, not its average ones);
 *   4. the smallest size whose p99 is within `latencyTolerance` (2%) of that
 *      lowest: memory that buys no latency is not bought.
 * Cold starts stretch with the CPU share as warm requests do, so they order the
 * sizes the same way and need no rule of their own.
 */
export function chooseMemory(
  options: readonly MemoryOption[],
  costTolerance = 0.1,
  latencyTolerance = 0.02,
): MemoryChoice {
  const fitting = options.filter((option) => option.fits);
  if (fitting.length === 0) throw new Error('the function fits in none of the memory sizes');
  const kinds = fitting[0]!.kinds.length;
  const cheapest = Array.from({ length: kinds }, (_, k) => Math.min(...fitting.map((o) => o.kinds[k]!.cost)));
  // How far above the cheapest this size's dearest kind is; if none is within the tolerance, the nearest count.
  const excess = (o: MemoryOption) => Math.max(...o.kinds.map((kind, k) => kind.cost / cheapest[k]!));
  const bound = Math.max(1 + costTolerance, Math.min(...fitting.map(excess)));
  const affordable = fitting.filter((o) => excess(o) <= bound).sort((a, b) => a.memoryMiB - b.memoryMiB);
  const worstP99 = (o: MemoryOption) => Math.max(...o.kinds.map((kind) => kind.p99Ms));
  const best = Math.min(...affordable.map(worstP99));
  const chosen = affordable.find((o) => worstP99(o) <= best * (1 + latencyTolerance))!;
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  return {
    memoryMiB: chosen.memoryMiB,
    affordable: affordable.map((o) => o.memoryMiB),
    reason:
      `of the sizes it fits in, ${affordable.map((o) => o.memoryMiB).join(', ')} MB cost at most ${pct(bound - 1)} ` +
      `more per prediction than the cheapest for every input kind; ${chosen.memoryMiB} MB is the smallest of them ` +
      `whose slowest kind's p99 (${worstP99(chosen).toFixed(1)} ms) is within ${pct(latencyTolerance)} of their lowest`,
  };
}
