/**
 * The project's wasm kernels (functions/lib/training/kernels) against the reference
 * cpu backend, on seeded random shapes, and the training paths that use them.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '#lib/backend';
import { registerTrainingKernels, TRAINING_KERNELS } from '#lib/training/kernels/index';
import { seededRandom } from '#lib/training/batches';

type Shape = number[];
type Padding = 'same' | 'valid' | number[][];

before(async () => {
  assert.equal(await initBackend(['wasm'], 'wasm'), 'wasm');
  registerTrainingKernels();
});

// Seeded: the same shapes and values on every run.
const random = seededRandom(20261125);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const values = (shape: Shape) =>
  Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1);

/** Runs `build` on one backend and reads its outputs back; `build` creates its tensors there. */
async function runOn(backend: 'cpu' | 'wasm', build: () => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  try {
    const out = tf.tidy(build);
    const list = Array.isArray(out) ? out : [out];
    const data = await Promise.all(list.map((t) => t.data<'float32'>()));
    tf.dispose(list);
    return data;
  } finally {
    await tf.setBackend('wasm');
  }
}

/** Every element within 1e-4 of the cpu result, relative to the cpu result's largest magnitude. */
function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const scale = Math.max(1e-6, ...expected.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  assert.ok(worst <= 1e-4 * scale, `${what}: max difference ${worst} against scale ${scale}`);
}

/** Runs one kernel on both backends and compares. */
async function compareKernel(
  kernel: string,
  inputs: Record<string, { shape: Shape; data: Float32Array }>,
  attrs: tf.NamedAttrMap,
  what: string,
): Promise<void> {
  const build = () => {
    const tensors = Object.fromEntries(
      Object.entries(inputs).map(([name, { shape, data }]) => [name, tf.tensor(data, shape)]),
    );
    return tf.engine().runKernel(kernel, tensors, attrs) as tf.Tensor;
  };
  const [[expected], [actual]] = [await runOn('cpu', build), await runOn('wasm', build)];
  assertClose(actual!, expected!, `${kernel} ${what}`);
}

/** Runs `body` inside tf.tidy and asserts nothing outlives it: engine tensors, bytes, or wasm heap buffers. */
function assertFreesEverything(body: () => unknown): void {
  const backend = tf.engine().backend;
  const before = { ...tf.memory(), dataIds: backend.numDataIds() };
  tf.tidy(() => {
    body();
  });
  const after = { ...tf.memory(), dataIds: backend.numDataIds() };
  assert.deepEqual(
    [after.numTensors, after.numBytes, after.dataIds],
    [before.numTensors, before.numBytes, before.dataIds],
    'numTensors, numBytes, wasm data ids',
  );
}

/** Conv2D attributes for an NHWC input and filter, with the output shape they give. */
function convCase(x: Shape, filter: Shape, stride: number, pad: Padding) {
  const info = tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    filter as [number, number, number, number],
    stride,
    1,
    pad as 'same' | 'valid' | tf.backend_util.ExplicitPadding,
  );
  return { attrs: { strides: [stride, stride], pad, dataFormat: 'NHWC' }, dyShape: info.outShape };
}

function randomConvShapes(): { x: Shape; filter: Shape } {
  const [fh, fw, inChannels] = [int(1, 4), int(1, 4), int(1, 4)];
  return { x: [int(1, 3), int(fh, 11), int(fw, 11), inChannels], filter: [fh, fw, inChannels, int(1, 5)] };
}

/** Four random cases plus one whose strided valid convolution never reads the last row and column. */
const convShapes = () => [...Array.from({ length: 4 }, randomConvShapes), { x: [2, 8, 9, 3], filter: [3, 2, 3, 4] }];

/** Explicit padding wider than the filter on the top and left, where a gradient must drop rows instead of padding. */
const WIDE_PAD = [
  [0, 0],
  [4, 1],
  [3, 0],
  [0, 0],
];

const STRIDE_PADS: [number, Padding][] = [
  [1, 'valid'],
  [1, 'same'],
  [2, 'valid'],
  [2, 'same'],
  [1, WIDE_PAD],
  [2, WIDE_PAD],
];

describe('BatchMatMul and _FusedMatMul on wasm', () => {
  // [M,K]·[K,N] products under leading batch dimensions.
  const shapeCases: { name: string; outerA: Shape; outerB: Shape; mkn: [number, number, number] }[] = [
    { name: 'rank 2', outerA: [], outerB: [], mkn: [int(2, 9), int(2, 9), int(2, 9)] },
    { name: 'rank 2 against a rank-3 batch of 1', outerA: [], outerB: [1], mkn: [int(2, 9), int(2, 9), int(2, 9)] },
    { name: 'batch of 3 small matrices', outerA: [3], outerB: [3], mkn: [int(2, 6), int(2, 6), int(2, 6)] },
    { name: 'batch of 3 (one product per matrix)', outerA: [3], outerB: [3], mkn: [20, 40, 30] },
    { name: 'batched left, shared right', outerA: [4], outerB: [1], mkn: [17, 23, 11] },
    { name: 'shared left, batched right', outerA: [1], outerB: [3], mkn: [20, 40, 30] },
    { name: 'rank 4', outerA: [2, 3], outerB: [2, 3], mkn: [24, 32, 28] },
    // M a multiple of 4 and N of 8: the project's own loop (gemm.ts).
    { name: 'rank 2 in whole 4×8 blocks', outerA: [], outerB: [], mkn: [4 * int(1, 5), int(1, 40), 8 * int(1, 4)] },
    { name: 'rank 3 batch of 1 in whole 4×8 blocks', outerA: [1], outerB: [1], mkn: [64, 100, 40] },
    { name: 'a single 4×8 block, K of 1', outerA: [], outerB: [], mkn: [4, 1, 8] },
  ];

  for (const {
    name,
    outerA,
    outerB,
    mkn: [m, k, n],
  } of shapeCases) {
    for (const [transposeA, transposeB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      test(`${name}, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
        const aShape = [...outerA, ...(transposeA ? [k, m] : [m, k])];
        const bShape = [...outerB, ...(transposeB ? [n, k] : [k, n])];
        const inputs = { a: { shape: aShape, data: values(aShape) }, b: { shape: bShape, data: values(bShape) } };
        await compareKernel('BatchMatMul', inputs, { transposeA, transposeB }, `${aShape}·${bShape}`);
      });
    }
  }

  test('fused: bias and relu with transposes, batched and not', async () => {
    for (const [a, b, transposeA, transposeB] of [
      [[1, 30, 50], [1, 40, 50], false, true],
      [[1, 50, 30], [1, 50, 40], true, false],
      [[3, 30, 50], [3, 40, 50], false, true],
      [[3, 50, 30], [1, 50, 40], true, false],
    ] as [Shape, Shape, boolean, boolean][]) {
      const n = transposeB ? b[1]! : b[2]!;
      const [aData, bData, biasData] = [values(a), values(b), values([n])];
      const build = () =>
        tf.fused.matMul({
          a: tf.tensor3d(aData, a as [number, number, number]),
          b: tf.tensor3d(bData, b as [number, number, number]),
          transposeA,
          transposeB,
          bias: tf.tensor1d(biasData),
          activation: 'relu',
        });
      const [[expected], [actual]] = [await runOn('cpu', build), await runOn('wasm', build)];
      assert.ok(expected!.some((v) => v > 0) && expected!.some((v) => v === 0), 'relu clips part of the output');
      assertClose(actual!, expected!, `fused ${a}·${b}`);
    }
  });

  test('fused without bias or activation, in whole 4×8 blocks', async () => {
    const [a, b] = [values([1, 12, 20]), values([1, 20, 16])];
    const build = () => tf.fused.matMul({ a: tf.tensor3d(a, [1, 12, 20]), b: tf.tensor3d(b, [1, 20, 16]) });
    const [[expected], [actual]] = [await runOn('cpu', build), await runOn('wasm', build)];
    assertClose(actual!, expected!, 'fused [1,12,20]·[1,20,16]');
  });

  test('frees every intermediate', () => {
    const [a, b] = [tf.randomNormal([3, 40, 20]), tf.randomNormal([3, 30, 40])];
    for (const [x, y, transposeA, transposeB] of [
      [a, b, true, true],
      [tf.randomNormal([20, 8]), tf.randomNormal([20, 6]), true, false],
      [a, tf.randomNormal([40, 30]), true, false],
      [tf.randomNormal([8, 12]), tf.randomNormal([16, 12]), false, true],
      [tf.randomNormal([12, 8]), tf.randomNormal([12, 16]), true, false],
    ] as const) {
      assertFreesEverything(() => {
        tf.matMul(x, y, transposeA, transposeB);
        tf.fused.matMul({
          a: x,
          b: y,
          transposeA,
          transposeB,
          bias: tf.ones([y.shape[transposeB ? y.rank - 2 : y.rank - 1]!]),
        });
      });
    }
    tf.dispose([a, b]);
  });
});

describe('Conv2DBackpropFilter on wasm', () => {
  for (const [stride, pad] of STRIDE_PADS) {
    test(`stride ${stride}, ${JSON.stringify(pad)} padding, random shapes`, async () => {
      for (const { x, filter } of convShapes()) {
        const { attrs, dyShape } = convCase(x, filter, stride, pad);
        const inputs = { x: { shape: x, data: values(x) }, dy: { shape: dyShape, data: values(dyShape) } };
        await compareKernel(
          'Conv2DBackpropFilter',
          inputs,
          { ...attrs, filterShape: filter },
          `x ${x} filter ${filter}`,
        );
      }
    });
  }

  test('frees every intermediate, including the rows a strided valid convolution skips', () => {
    const x = tf.randomNormal([2, 8, 9, 3]);
    const filterShape = [3, 2, 3, 4];
    for (const [stride, pad] of STRIDE_PADS) {
      const { attrs, dyShape } = convCase(x.shape, filterShape, stride, pad);
      const dy = tf.randomNormal(dyShape);
      assertFreesEverything(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape }));
      dy.dispose();
    }
    x.dispose();
  });
});

describe('Conv2DBackpropInput on wasm', () => {
  for (const [stride, pad] of STRIDE_PADS) {
    test(`stride ${stride}, ${JSON.stringify(pad)} padding, random shapes`, async () => {
      for (const { x, filter } of convShapes()) {
        const { attrs, dyShape } = convCase(x, filter, stride, pad);
        const inputs = {
          dy: { shape: dyShape, data: values(dyShape) },
          filter: { shape: filter, data: values(filter) },
        };
        await compareKernel('Conv2DBackpropInput', inputs, { ...attrs, inputShape: x }, `x ${x} filter ${filter}`);
      }
    });
  }

  test('frees every intermediate', () => {
    const filter = tf.randomNormal([3, 2, 3, 4]);
    for (const [stride, pad] of STRIDE_PADS) {
      const { attrs, dyShape } = convCase([2, 8, 9, 3], filter.shape, stride, pad);
      const dy = tf.randomNormal(dyShape);
      assertFreesEverything(() =>
        tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: [2, 8, 9, 3] }),
      );
      dy.dispose();
    }
    filter.dispose();
  });
});

describe('MaxPoolGrad on wasm', () => {
  const poolCases: { x: Shape; size: number; stride: number; pad: 'same' | 'valid' }[] = [
    { x: [2, 12, 10, 5], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 11, 9, 5], size: 2, stride: 2, pad: 'valid' },
    { x: [2, 11, 9, 5], size: 2, stride: 2, pad: 'same' },
    { x: [1, 9, 8, 3], size: 3, stride: 2, pad: 'same' },
    { x: [1, 9, 8, 3], size: 3, stride: 1, pad: 'valid' },
    { x: [1, 7, 7, 2], size: 2, stride: 1, pad: 'same' },
  ];

  for (const { x, size, stride, pad } of poolCases) {
    test(`${size}×${size} pool, stride ${stride}, ${pad} padding, ties go to the first maximum as on cpu`, async () => {
      // Few distinct values, so most windows hold several maxima.
      const xData = values(x).map((v) => Math.round(v * 2));
      const attrs = { filterSize: [size, size], strides: [stride, stride], pad };
      const build = () => {
        const input = tf.tensor4d(xData, x as [number, number, number, number]);
        const output = tf.maxPool(input, size, stride, pad);
        const dy = tf.reshape(tf.range(1, output.size + 1), output.shape);
        return tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs) as tf.Tensor;
      };
      const [[expected], [actual]] = [await runOn('cpu', build), await runOn('wasm', build)];
      assert.deepEqual(actual, expected);
    });
  }

  test('frees every intermediate', () => {
    const input = tf.randomNormal([2, 11, 9, 5]) as tf.Tensor4D;
    for (const [size, stride, pad] of [
      [2, 2, 'valid'],
      [3, 2, 'same'],
    ] as const) {
      const output = tf.maxPool(input, size, stride, pad);
      const dy = tf.onesLike(output);
      assertFreesEverything(() =>
        tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, { filterSize: size, strides: stride, pad }),
      );
      tf.dispose([output, dy]);
    }
    input.dispose();
  });
});

describe('Sum and Mean on wasm', () => {
  const cases: { x: Shape; axis: number[] }[] = [
    { x: [6, 5, 4, 3], axis: [0, 1, 2] },
    { x: [6, 5, 4, 3], axis: [1, 0] },
    { x: [7, 9], axis: [0] },
    { x: [6, 5, 4, 3], axis: [3] },
    { x: [6, 5, 4, 3], axis: [0, 2] },
    { x: [6, 5, 4, 3], axis: [0, 1, 2, 3] },
  ];
  for (const kernel of ['Sum', 'Mean']) {
    for (const { x, axis } of cases) {
      for (const keepDims of [false, true]) {
        test(`${kernel} of ${x} over ${axis}, keepDims=${keepDims}`, async () => {
          await compareKernel(kernel, { x: { shape: x, data: values(x) } }, { axis, keepDims }, `${x} over ${axis}`);
        });
      }
    }
  }

  test('frees every intermediate', () => {
    const x = tf.randomNormal([6, 5, 4, 3]);
    assertFreesEverything(() => [tf.sum(x, [0, 1, 2]), tf.mean(x, [0, 1], true), tf.sum(x, [0, 2])]);
    x.dispose();
  });
});

describe('Identity on wasm', () => {
  test("a clone shares its source's buffer, outlives the source, and the last reference frees it", () => {
    const backend = tf.engine().backend;
    const x = tf.tensor([1, 2, 3]);
    const before = backend.numDataIds();
    const y = tf.clone(x);
    assert.equal(backend.numDataIds(), before, 'no new buffer');
    x.dispose();
    assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
    y.dispose();
    assert.equal(backend.numDataIds(), before - 1);
  });

  test('strings are cloned by the stock kernel', () => {
    const x = tf.tensor(['a', 'bc']);
    const y = tf.clone(x);
    x.dispose();
    assert.deepEqual(y.arraySync(), ['a', 'bc']);
    y.dispose();
  });
});

describe('training through the project kernels', () => {
  test('gradients of conv → relu → maxpool → conv → maxpool → dense → softmax match cpu', async () => {
    const shapes = { x: [3, 14, 13, 2], w1: [3, 3, 2, 4], w2: [3, 2, 4, 6], wd: [3 * 3 * 6, 5], target: [3, 5] };
    const data = Object.fromEntries(Object.entries(shapes).map(([name, shape]) => [name, values(shape)]));
    const build = () => {
      const t = Object.fromEntries(
        Object.entries(shapes).map(([name, shape]) => [name, tf.tensor(data[name]!, shape)]),
      );
      const loss = (w1: tf.Tensor, w2: tf.Tensor, wd: tf.Tensor) => {
        const h1 = tf.maxPool(tf.relu(tf.conv2d(t.x as tf.Tensor4D, w1 as tf.Tensor4D, 1, 'same')), 2, 2, 'valid');
        const h2 = tf.maxPool(tf.relu(tf.conv2d(h1, w2 as tf.Tensor4D, 2, 'valid')), 2, 1, 'same');
        const logits = tf.matMul(tf.reshape(h2, [3, -1]), wd);
        return tf.sum(tf.mul(tf.softmax(logits), t.target!));
      };
      return tf.grads(loss)([t.w1!, t.w2!, t.wd!]);
    };
    const [expected, actual] = [await runOn('cpu', build), await runOn('wasm', build)];
    ['w1', 'w2', 'wd'].forEach((name, i) => assertClose(actual[i]!, expected[i]!, `d loss / d ${name}`));
  });

  test('a layers CNN with batch norm and dropout learns a toy task on wasm', async () => {
    assert.equal(tf.getBackend(), 'wasm');
    // Class = the quadrant holding a bright square, learnable in a few epochs.
    const count = 64;
    const images = new Float32Array(count * 16 * 16);
    const labels = Array.from({ length: count }, (_, i) => i % 4);
    labels.forEach((label, i) => {
      const [top, left] = [label < 2 ? 2 : 9, label % 2 === 0 ? 2 : 9];
      for (let y = top; y < top + 5; y++)
        for (let x = left; x < left + 5; x++) images[i * 256 + y * 16 + x] = 0.5 + random() / 2;
    });
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [16, 16, 1],
          filters: 8,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tfl.initializers.heNormal({ seed: 1 }),
        }),
        tfl.layers.batchNormalization(),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.conv2d({
          filters: 8,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tfl.initializers.heNormal({ seed: 2 }),
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dropout({ rate: 0.25, seed: 3 }),
        tfl.layers.dense({
          units: 4,
          activation: 'softmax',
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }),
        }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    const x = tf.tensor4d(images, [count, 16, 16, 1]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 4);
    const history = await model.fit(x, y, { epochs: 8, batchSize: 16, shuffle: false, verbose: 0 });
    const losses = history.history.loss as number[];
    assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
    // Chance is ln 4 ≈ 1.39.
    assert.ok(losses.at(-1)! < 0.1, `loss went from ${losses[0]} to ${losses.at(-1)}`);
    tf.dispose([x, y]);
    model.dispose();
  });

  test('registering twice leaves the kernels as they are', () => {
    const before = TRAINING_KERNELS.map((name) => tf.getKernel(name, 'wasm')?.kernelFunc);
    registerTrainingKernels();
    assert.ok(before.every((kernelFunc) => kernelFunc !== undefined));
    assert.deepEqual(
      TRAINING_KERNELS.map((name) => tf.getKernel(name, 'wasm')?.kernelFunc),
      before,
    );
  });
});
