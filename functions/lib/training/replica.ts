/**
 * One worker's part of a data-parallel run (data-parallel.ts): a replica of
 * the model on the worker's own tfjs backend, training on its shard of every
 * batch. Each step it computes its shard's gradients, writes them to shared
 * memory (exchange.ts) and waits at the barrier; then it adds every shard's
 * gradients up in rank order, each weighted by its share of the batch, and
 * gives Adam the sum. Every replica adds the same numbers in the same order
 * and applies the same update, so their weights stay identical without any
 * being sent: only rank 0's go back, once, at the end.
 *
 * Every replica draws the same shuffles and learning rates as the
 * single-threaded loop from the same seed. Augmentation draws from one
 * stream per run as on one thread, each replica skipping the other shards'
 * images, so every image gets the distortion it gets on one thread. Dropout
 * draws per shard: a seeded Dropout layer draws its mask from its seed, so
 * replica r adds r × DROPOUT_SEED_STRIDE to it, or every shard would drop
 * the same units of its rows.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../backend.ts';
import type { BackendName } from '../config.ts';
import { seededRandom, shuffled, skipDistortions, toInputs, type LabelledImages } from './batches.ts';
import { evaluateIndices } from './evaluate.ts';
import { Exchange, type ExchangeBuffers } from './exchange.ts';
import { adam } from './kernels/adam.ts';
import { registerTrainingKernels } from './kernels/index.ts';
import { trainingLoss, type BatchScore } from './loss.ts';
import { dropoutReseeder } from './model.ts';
import { learningRateAt, reportInterval, type StepSettings } from './train-loop.ts';

/** A model's layers and their settings, as `model.toJSON(null, false)` gives them. */
export type Topology = Parameters<typeof tfl.models.modelFromJSON>[0];

/** Added to a Dropout layer's seed once per rank. */
export const DROPOUT_SEED_STRIDE = 7919;

export interface ReplicaInit {
  rank: number;
  threads: number;
  backend: BackendName;
  /** `model.toJSON(null, false)`, and every weight's values in `model.weights` order. */
  topology: Topology;
  weights: Float32Array[];
  /** On shared memory: one copy for every replica. */
  examples: LabelledImages;
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  batches: number;
  settings: StepSettings;
  exchange: ExchangeBuffers;
}

/** Sums over a replica's validation shard; rank 0 adds the epoch's training figures. */
export interface ReplicaEpoch {
  type: 'epoch';
  rank: number;
  epoch: number;
  validation: { lossSum: number; correct: number; count: number };
  training?: { loss: number; accuracy: number; seconds: number };
}

export type ReplicaMessage =
  | { type: 'batch'; epoch: number; batch: number; loss: number }
  | ReplicaEpoch
  | { type: 'weights'; values: Float32Array[] }
  | { type: 'done'; rank: number };

/** [from, to) of `count` items that rank `rank` of `threads` takes: shares differ by at most one. */
export function shardOf(count: number, rank: number, threads: number): [number, number] {
  return [Math.floor((rank * count) / threads), Math.floor(((rank + 1) * count) / threads)];
}

function withShardSeeds(topology: Topology, rank: number): Topology {
  const copy = structuredClone(topology) as {
    config?: { layers?: { class_name: string; config: { seed?: unknown } }[] };
  };
  for (const layer of copy.config?.layers ?? []) {
    if (layer.class_name === 'Dropout' && typeof layer.config.seed === 'number')
      layer.config.seed += rank * DROPOUT_SEED_STRIDE;
  }
  return copy as Topology;
}

async function replicaModel(init: ReplicaInit): Promise<tfl.LayersModel> {
  const model = await tfl.models.modelFromJSON(withShardSeeds(init.topology, init.rank));
  const values = init.weights.map((data, i) => tf.tensor(data, model.weights[i]!.read().shape));
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

/** A float32 tensor's values: on wasm a view of the heap (no copy), elsewhere a copy. */
function valuesOf(tensor: tf.Tensor): Float32Array {
  if (tf.getBackend() === 'wasm') return (tf.backend() as BackendWasm).typedArrayFromHeap(tensor) as Float32Array;
  return tensor.dataSync() as Float32Array;
}

/** A new float32 tensor that `fill` writes: on wasm straight into its heap buffer. */
function filled(shape: number[], fill: (values: Float32Array) => void): tf.Tensor {
  if (tf.getBackend() !== 'wasm') {
    const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fill(values);
    return tf.tensor(values, shape);
  }
  const backend = tf.backend() as BackendWasm;
  const out = backend.makeOutput(shape, 'float32');
  fill(backend.typedArrayFromHeap(out) as Float32Array);
  return tf.engine().makeTensorFromTensorInfo(out);
}

/**
 * out[j] = Σ share[r] · shards[r][start + j], added in rank order, so every
 * replica gets the same floats; two shards (two cores) in one pass.
 */
function weightedSum(out: Float32Array, shards: Float32Array[], share: number[], start: number): void {
  if (shards.length === 2) {
    const [a, b] = [shards[0]!, shards[1]!];
    const [shareA, shareB] = [share[0]!, share[1]!];
    for (let j = 0; j < out.length; j++) out[j] = shareA * a[start + j]! + shareB * b[start + j]!;
    return;
  }
  out.fill(0);
  shards.forEach((shard, r) => {
    for (let j = 0; j < out.length; j++) out[j]! += share[r]! * shard[start + j]!;
  });
}

/** Trains the replica to the end of the run, reporting through `post`. */
export async function runReplica(init: ReplicaInit, post: (message: ReplicaMessage) => void): Promise<void> {
  const { rank, threads, examples, trainIndices, validationIndices, batches } = init;
  const { epochs, batchSize, learningRate, schedule, seed, augment, labelSmoothing } = init.settings;
  await initBackend(undefined, init.backend);
  registerTrainingKernels();
  const model = await replicaModel(init);
  const reseedDropout = dropoutReseeder(model);
  const exchange = new Exchange(init.exchange, rank);
  const random = seededRandom(seed);
  const distort = augment ? seededRandom(seed + 1) : undefined;
  const optimizer = adam(learningRate);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const offsets: number[] = [];
  let params = 0;
  for (const variable of variables) {
    offsets.push(params);
    params += variable.size;
  }
  const [from, to] = shardOf(batchSize, rank, threads);
  const shareOf = Array.from({ length: threads }, (_, r) => {
    const [a, b] = shardOf(batchSize, r, threads);
    return (b - a) / batchSize;
  });
  const [validationFrom, validationTo] = shardOf(validationIndices.length, rank, threads);
  const validationShard = validationIndices.subarray(validationFrom, validationTo);
  const reportEvery = reportInterval(batches);
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const started = performance.now();
      const order = shuffled(trainIndices, random);
      let lossSum = 0;
      let correct = 0;
      for (let b = 0; b < batches; b++) {
        const step = (epoch - 1) * batches + b;
        optimizer.learningRate = learningRateAt(schedule, learningRate, step, epochs * batches);
        reseedDropout(step);
        const shard = order.subarray(b * batchSize + from, b * batchSize + to);
        if (distort) skipDistortions(distort, from);
        const x = toInputs(examples, shard, distort);
        if (distort) skipDistortions(distort, batchSize - to);
        const labels = Array.from(shard, (index) => examples.labels[index]!);
        const score: BatchScore = { loss: 0, correct: 0 };
        const { value, grads } = optimizer.computeGradients(
          () => trainingLoss(model.apply(x, { training: true }) as tf.Tensor, labels, score, labelSmoothing),
          variables,
        );
        value.dispose();
        x.dispose();
        const own = exchange.ownGradients(step);
        variables.forEach((variable, i) => own.set(valuesOf(grads[variable.name]!), offsets[i]));
        tf.dispose(grads);
        exchange.putScore(step, score.loss, score.correct);
        exchange.barrier();
        const shards = exchange.allGradients(step);
        const averaged = variables.map((variable, i) => ({
          name: variable.name,
          tensor: filled(variable.shape, (out) => weightedSum(out, shards, shareOf, offsets[i]!)),
        }));
        optimizer.applyGradients(averaged);
        tf.dispose(averaged.map((g) => g.tensor));
        let batchLoss = 0;
        exchange.allScores(step).forEach((s, r) => {
          batchLoss += shareOf[r]! * s.loss;
          correct += s.correct;
        });
        lossSum += batchLoss;
        if (rank === 0 && (b % reportEvery === 0 || b === batches - 1))
          post({ type: 'batch', epoch, batch: b + 1, loss: batchLoss });
      }
      const seconds = (performance.now() - started) / 1000;
      const validation = { lossSum: 0, correct: 0, count: validationShard.length };
      if (validationShard.length > 0) {
        const evaluation = await evaluateIndices(model, examples, validationShard);
        validation.lossSum = evaluation.loss * evaluation.count;
        validation.correct = Math.round(evaluation.accuracy * evaluation.count);
      }
      post({
        type: 'epoch',
        rank,
        epoch,
        validation,
        ...(rank === 0
          ? { training: { loss: lossSum / batches, accuracy: correct / (batches * batchSize), seconds } }
          : {}),
      });
    }
    if (rank === 0) post({ type: 'weights', values: model.weights.map((w) => w.read().dataSync() as Float32Array) });
  } finally {
    optimizer.dispose();
    model.dispose();
  }
  post({ type: 'done', rank });
}
