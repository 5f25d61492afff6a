import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  apiGatewayUnits,
  billedMs,
  chooseMemory,
  type CostInput,
  costPerThousand,
  cpuShare,
  meanBilledMs,
  type MemoryOption,
  scaledMs,
} from '../scripts/bench/cost-model.ts';
import { PRICES, type PriceTable } from '../scripts/bench/prices.ts';

/** Round prices, so each expected figure below can be worked out by hand (the working is beside it). */
const prices: PriceTable = {
  ...PRICES,
  lambda: {
    arm64: { perGbSecond: 0.00001, perMillionRequests: 0.2 },
    x86_64: { perGbSecond: 0.00002, perMillionRequests: 0.2 },
  },
  apiGatewayHttp: { perMillionRequests: 1, meteringIncrementBytes: 512 * 1024 },
  s3: { perThousandGets: 0.0004 },
  cloudWatchLogs: { perGbIngested: 0.5, eventOverheadBytes: 26 },
};

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= Math.abs(expected) * 1e-9, `${what}: ${actual}, expected ${expected}`);

describe('cost bench arithmetic', () => {
  for (const [memory, share] of [
    [128, 128 / 1769],
    [884.5, 0.5],
    [1769, 1],
    [3008, 1],
  ] as const) {
    test(`${memory} MB gets ${share.toFixed(4)} of a vCPU`, () => close(cpuShare(memory), share, 'share'));
  }

  for (const [ms, memory, expected] of [
    [1, 884.5, 2],
    [3, 1769, 3],
    [3, 3008, 3],
    [0.5, 128, 0.5 / (128 / 1769)],
  ] as const) {
    test(`${ms} ms on one core takes ${expected.toFixed(3)} ms at ${memory} MB`, () =>
      close(scaledMs(ms, memory), expected, 'scaled'));
  }

  for (const [ms, billed] of [
    [0, 1],
    [0.2, 1],
    [1, 1],
    [1.0001, 2],
    [12.5, 13],
  ] as const) {
    test(`${ms} ms is billed as ${billed} ms`, () => assert.equal(billedMs(ms), billed));
  }

  test('each sample is rounded up on its own before the mean, after scaling', () => {
    // 1769 MB: 0.4, 0.9, 1.2 → 1, 1, 2; 884.5 MB: 0.8, 1.8, 2.4 → 1, 2, 3.
    close(meanBilledMs([0.4, 0.9, 1.2], 1769), 4 / 3, '1769 MB');
    close(meanBilledMs([0.4, 0.9, 1.2], 884.5), 2, '884.5 MB');
  });

  for (const [bytes, units] of [
    [0, 1],
    [524_288, 1],
    [524_289, 2],
    [1_600_000, 4],
  ] as const) {
    test(`API Gateway counts a ${bytes}-byte request as ${units}`, () =>
      assert.equal(apiGatewayUnits(bytes, 512 * 1024), units));
  }

  const cases: { name: string; input: CostInput; expected: Record<string, number> }[] = [
    {
      name: 'one image, arm64, 1024 MB, a cold start per 100 requests',
      input: {
        memoryMiB: 1024,
        arch: 'arm64',
        predictionsPerRequest: 1,
        meanBilledMs: 2,
        coldStartBilledMs: 300,
        requestsPerColdStart: 100,
        s3GetsPerColdStart: 4,
        apiPayloadBytes: 1000,
        logBytesPerRequest: 1000,
        logEventsPerRequest: 3,
        coldLogBytes: 500,
        coldLogEvents: 2,
      },
      expected: {
        lambdaRequests: 0.0002, // 0.2 / 1e6 × 1000
        lambdaDuration: 0.00005, // 1 GB × (2 + 300 / 100) ms × 1e-5 × 1000
        apiGateway: 0.001, // one unit × 1 / 1e6 × 1000
        s3Gets: 0.000016, // 4 / 100 × 0.0004 / 1000 × 1000
        logs: 0.0005045533180236816, // (1000 + 3 × 26 + (500 + 2 × 26) / 100) / 2^30 × 0.5 × 1000
        perThousandRequests: 0.0017705533180236814,
        perThousandPredictions: 0.0017705533180236814,
      },
    },
    {
      name: 'a batch of 32, x86, 512 MB, 600 kB, a cold start per 10 requests',
      input: {
        memoryMiB: 512,
        arch: 'x86_64',
        predictionsPerRequest: 32,
        meanBilledMs: 10,
        coldStartBilledMs: 1000,
        requestsPerColdStart: 10,
        s3GetsPerColdStart: 7,
        apiPayloadBytes: 600_000,
        logBytesPerRequest: 20_000,
        logEventsPerRequest: 34,
        coldLogBytes: 0,
        coldLogEvents: 0,
      },
      expected: {
        lambdaRequests: 0.0002,
        lambdaDuration: 0.0011, // 0.5 GB × (10 + 1000 / 10) ms × 2e-5 × 1000
        apiGateway: 0.002, // 600,000 bytes is two 512 KB units
        s3Gets: 0.00028, // 7 / 10 × 0.0004 / 1000 × 1000
        logs: 0.009724870324134827, // (20,000 + 34 × 26) / 2^30 × 0.5 × 1000
        perThousandRequests: 0.013304870324134827,
        perThousandPredictions: 0.00041577719762921333, // / 32
      },
    },
  ];
  for (const { name, input, expected } of cases) {
    test(`cost per 1,000: ${name}`, () => {
      const actual = costPerThousand(input, prices);
      for (const [key, value] of Object.entries(expected)) close(actual[key as keyof typeof actual], value, key);
    });
  }
});

describe('choosing the predict function’s memory', () => {
  /** Two kinds; cost flat below a full vCPU, latency halving with memory up to it. */
  const option = (memoryMiB: number, costs: [number, number], p99s: [number, number], fits = true): MemoryOption => ({
    memoryMiB,
    fits,
    kinds: costs.map((cost, k) => ({ cost, p99Ms: p99s[k]! })),
  });
  const typical = [
    option(512, [1.0, 2.0], [10, 40]),
    option(1024, [1.0, 2.05], [5, 20]),
    option(1769, [1.02, 2.1], [2.9, 11.6]),
    option(3008, [1.7, 3.5], [2.9, 11.6]),
  ];

  const cases: { name: string; options: MemoryOption[]; chosen: number; affordable: number[] }[] = [
    {
      name: 'the fastest affordable size; the dearer one that is no faster is not bought',
      options: typical,
      chosen: 1769,
      affordable: [512, 1024, 1769],
    },
    {
      name: 'a size the function does not fit in is never chosen, even if cheapest',
      options: [option(256, [0.5, 1.0], [20, 80], false), ...typical],
      chosen: 1769,
      affordable: [512, 1024, 1769],
    },
    {
      name: 'more than 10% dearer for any one kind is not affordable',
      options: [
        option(512, [1.0, 2.0], [10, 40]),
        option(1024, [1.0, 2.05], [5, 20]),
        option(1769, [1.02, 2.21], [2.9, 11.6]),
      ],
      chosen: 1024,
      affordable: [512, 1024],
    },
    {
      name: 'within 2% of the lowest p99, the smaller size',
      options: [option(1024, [1.0, 2.0], [3, 11.8]), option(1769, [1.0, 2.0], [2.9, 11.6])],
      chosen: 1024,
      affordable: [1024, 1769],
    },
    {
      name: 'when no size is within 10% for every kind, the nearest ones',
      options: [
        option(512, [1.0, 3.0], [10, 40]),
        option(1024, [1.5, 2.0], [5, 20]),
        option(1769, [1.45, 2.5], [3, 12]),
      ],
      chosen: 1769, // dearest kind 1.5× (512), 1.5× (1024), 1.45× (1769)
      affordable: [1769],
    },
  ];
  for (const { name, options, chosen, affordable } of cases) {
    test(name, () => {
      const choice = chooseMemory(options);
      assert.equal(choice.memoryMiB, chosen);
      assert.deepEqual(choice.affordable, affordable);
    });
  }

  test('fails when the function fits in none of the sizes', () => {
    assert.throws(() => chooseMemory([option(128, [1, 1], [1, 1], false)]), /fits in none/);
  });
});

test('the price table is dated, names its sources and says it must be checked', () => {
  assert.match(PRICES.asOf, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(PRICES.sources.length, 4);
  assert.match(PRICES.checked, /verify/);
});
