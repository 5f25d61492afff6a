/**
 * Stock tfjs-wasm kernels against the project's (functions/lib/training/kernels), at
 * the shapes a batch-128 step of the Keras MNIST convnet and MLP produces:
 *   npm run bench -- kernels [--runs 5]
 * Prints the fastest of `runs` calls of each kernel in milliseconds (the
 * fastest, because on a shared machine interference only ever adds time),
 * with the forward Conv2D, which the project does not replace, for scale;
 * then one whole training step (`trainOnBatch`) of each project architecture.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, NamedAttrMap, NamedTensorMap } from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '#lib/backend';
import { TRAINING_KERNELS } from '#lib/training/kernels/index';
import { createModel, type Arch } from '#lib/training/model';

const BATCH = 128;

// argv[2] is the bench's name (`npm run bench -- kernels --runs 5`).
const { values } = parseArgs({ args: process.argv.slice(3), options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);

type KernelSet = Map<string, KernelConfig | undefined>;
const kernelSet = (): KernelSet => new Map(TRAINING_KERNELS.map((name) => [name, tf.getKernel(name, 'wasm')]));
const stock = kernelSet();
await initBackend(['wasm'], 'wasm');
const project = kernelSet();

function use(set: KernelSet): void {
  for (const [name, kernel] of set) {
    if (tf.getKernel(name, 'wasm') !== undefined) tf.unregisterKernel(name, 'wasm');
    if (kernel !== undefined) tf.registerKernel(kernel);
  }
}

/** Fastest ms of `runs` calls after one warm-up, or undefined when the set lacks the kernel. */
function timeKernel(set: KernelSet, name: string, inputs: NamedTensorMap, attrs: NamedAttrMap): number | undefined {
  if (set.has(name) && set.get(name) === undefined) return undefined;
  use(set);
  const once = () => {
    // Fresh copies, as in training: wasm's matmul and convolution cache their
    // packed weights by buffer, which would flatter repeated calls. Copied
    // through JavaScript because the project's Identity (tf.clone) shares the buffer.
    const fresh = Object.fromEntries(
      Object.entries(inputs).map(([key, t]) => [key, tf.tensor(t.dataSync(), t.shape, t.dtype)]),
    );
    const start = performance.now();
    const out = tf.engine().runKernel(name, fresh, attrs) as tf.Tensor;
    const ms = performance.now() - start;
    tf.dispose([out, ...Object.values(fresh)]);
    return ms;
  };
  once();
  return Math.min(...Array.from({ length: runs }, once));
}

interface Row {
  kernel: string;
  shape: string;
  inputs: NamedTensorMap;
  attrs: NamedAttrMap;
}

const rand = (shape: number[]) => tf.randomNormal(shape);
const rows: Row[] = [];
// 3×3 valid convolutions of a size×size×inChannels input; the forward
// Conv2D (never replaced) is there for scale.
for (const [size, inChannels, outChannels, stride, note] of [
  [28, 1, 32, 1, 'both nets'],
  [26, 32, 64, 1, 'Keras'],
  [13, 32, 64, 1, 'project cnn'],
  [26, 32, 64, 2, 'stride 2'],
] as const) {
  const out = Math.floor((size - 3) / stride) + 1;
  const x = rand([BATCH, size, size, inChannels]);
  const filter = rand([3, 3, inChannels, outChannels]);
  const dy = rand([BATCH, out, out, outChannels]);
  const attrs = { strides: [stride, stride], pad: 'valid', dataFormat: 'NHWC' };
  const shape = `${size}×${size}×${inChannels}→${out}×${out}×${outChannels} (${note})`;
  rows.push(
    { kernel: 'Conv2D', shape, inputs: { x, filter }, attrs: { ...attrs, dilations: [1, 1] } },
    { kernel: 'Conv2DBackpropFilter', shape, inputs: { x, dy }, attrs: { ...attrs, filterShape: filter.shape } },
    { kernel: 'Conv2DBackpropInput', shape, inputs: { dy, filter }, attrs: { ...attrs, inputShape: x.shape } },
  );
}
for (const [size, channels, note] of [
  [24, 64, 'Keras'],
  [26, 32, 'project cnn'],
] as const) {
  const input = rand([BATCH, size, size, channels]) as tf.Tensor4D;
  const output = tf.maxPool(input, 2, 2, 'valid');
  rows.push({
    kernel: 'MaxPoolGrad',
    shape: `${size}×${size}×${channels} 2×2/2 (${note})`,
    inputs: { dy: rand(output.shape), input, output },
    attrs: { filterSize: [2, 2], strides: [2, 2], pad: 'valid' },
  });
}
const biasGradient = rand([BATCH, 26, 26, 32]);
rows.push(
  {
    kernel: 'Sum',
    shape: '26×26×32 over N,H,W (conv bias gradient)',
    inputs: { x: biasGradient },
    attrs: { axis: [0, 1, 2] },
  },
  {
    kernel: 'Mean',
    shape: '26×26×32 over N,H,W (batch-norm moments)',
    inputs: { x: biasGradient },
    attrs: { axis: [0, 1, 2] },
  },
  {
    kernel: 'BatchMatMul',
    shape: '[128,784]·[784,256]',
    inputs: { a: rand([BATCH, 784]), b: rand([784, 256]) },
    attrs: { transposeA: false, transposeB: false },
  },
  {
    kernel: 'BatchMatMul',
    shape: '[128,784]ᵀ·[128,256]',
    inputs: { a: rand([BATCH, 784]), b: rand([BATCH, 256]) },
    attrs: { transposeA: true, transposeB: false },
  },
  {
    kernel: 'BatchMatMul',
    shape: '[128,256]·[784,256]ᵀ',
    inputs: { a: rand([BATCH, 256]), b: rand([784, 256]) },
    attrs: { transposeA: false, transposeB: true },
  },
  {
    kernel: 'BatchMatMul',
    shape: '[4,128,784]·[4,784,256]',
    inputs: { a: rand([4, BATCH, 784]), b: rand([4, 784, 256]) },
    attrs: { transposeA: false, transposeB: false },
  },
);

const cell = (ms: number | undefined) => (ms === undefined ? 'missing' : ms.toFixed(1));
const line = (cols: string[]) => console.log(`| ${cols.join(' | ')} |`);
line(['kernel', 'shape (batch 128)', 'stock ms', 'project ms', 'speed-up']);
line(['---', '---', '---:', '---:', '---:']);
for (const { kernel, shape, inputs, attrs } of rows) {
  const before = timeKernel(stock, kernel, inputs, attrs);
  const after = timeKernel(project, kernel, inputs, attrs);
  const speedUp = before !== undefined && after !== undefined ? `${(before / after).toFixed(1)}×` : '—';
  line([kernel, shape, cell(before), cell(after), speedUp]);
}

/** Fastest ms of one `trainOnBatch`, or undefined when a kernel it needs is missing. */
async function timeStep(set: KernelSet, arch: Arch): Promise<number | undefined> {
  use(set);
  const model = createModel({ arch });
  model.compile({ optimizer: 'adam', loss: 'categoricalCrossentropy' });
  const x = tf.randomUniform([BATCH, 28, 28, 1]);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32') as tf.Tensor1D, 10);
  try {
    const step = async () => {
      const start = performance.now();
      await model.trainOnBatch(x, y);
      return performance.now() - start;
    };
    await step();
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await step());
    return Math.min(...times);
  } catch (err) {
    if (err instanceof Error && err.message.includes('not registered')) return undefined;
    throw err;
  } finally {
    tf.dispose([x, y]);
    model.dispose();
  }
}

console.log();
line(['training step', 'stock ms', 'project ms', 'speed-up']);
line(['---', '---:', '---:', '---:']);
for (const arch of ['mlp', 'cnn'] as const) {
  const before = await timeStep(stock, arch);
  const after = await timeStep(project, arch);
  const speedUp = before !== undefined && after !== undefined ? `${(before / after).toFixed(1)}×` : '—';
  line([`${arch} trainOnBatch(${BATCH})`, cell(before), cell(after), speedUp]);
}
