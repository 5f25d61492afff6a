/**
 * The training loop: Adam on categorical cross-entropy with the learning-rate
 * schedule, validation each epoch, progress through `onProgress`. Pure tfjs:
 * no storage, no AWS, no printing.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  appendImages,
  range,
  repeatedRange,
  seededRandom,
  shuffled,
  toInputs,
  type LabelledImages,
} from './batches.ts';
import { evaluateIndices } from './evaluate.ts';
import { trainDataParallel } from './data-parallel.ts';
import { adam } from './kernels/adam.ts';
import { registerTrainingKernels } from './kernels/index.ts';
import { trainingLoss, type BatchScore } from './loss.ts';
import { type Arch, dropoutReseeder } from './model.ts';

/**
 * What `npm run train` uses when no flag says otherwise. The CNN takes larger
 * steps than the MLP: after one epoch its three-convolution predecessor scored
 * 98.68% on the MNIST test set at 3e-3 and 98.76% at 5e-3 (measured with a
 * cosine schedule that had no hold). The CNN's recipe (augmentation, a short
 * warm-up then cosine, label smoothing 0.1) is what took the same network
 * from 99.3–99.4% to 99.5% and above in 10–12 epochs; the MLP keeps the
 * classic Keras recipe, which augmentation does not improve in that time.
 */
export const TRAINING_DEFAULTS: Record<
  Arch,
  { learningRate: number; batchSize: number; schedule: Schedule; augment: boolean; labelSmoothing: number }
> = {
  mlp: { learningRate: 1e-3, batchSize: 128, schedule: 'cosine', augment: false, labelSmoothing: 0 },
  cnn: { learningRate: 5e-3, batchSize: 128, schedule: 'warmup-cosine', augment: true, labelSmoothing: 0.1 },
};

export const SCHEDULES = ['cosine', 'warmup-cosine', 'constant'] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  /** Adam's (initial) learning rate. */
  learningRate?: number;
  /**
   * 'cosine' holds the rate for the first half of the run, then anneals it to
   * zero; 'warmup-cosine' rises to it over the first WARMUP share of the run,
   * then anneals it to zero; 'constant' keeps it.
   */
  schedule?: Schedule;
  /** Label smoothing ε of the cross-entropy (0 for none): see `trainingLoss`. */
  labelSmoothing?: number;
  /** Fraction of the training set held out to report validation accuracy (0 disables). */
  validationSplit?: number;
  seed?: number;
  /** Randomly shift, rotate and scale each training image (AUGMENTATION); validation images stay as they are. */
  augment?: boolean;
  /**
   * Examples added to the training part only (never to validation), each
   * `repeat` times per epoch: users' corrections (see `feedbackBudget`).
   * Weight by repetition rather than a per-example factor in the loss: the
   * fused loss and the wasm kernels take a batch of labels and no weights,
   * and a copy is an ordinary example to the shuffle, the batches and
   * `--augment` (which distorts each copy differently).
   */
  extra?: { data: LabelledImages; repeat: number };
  /**
   * Threads the steps run on (default 1, at most `batchSize`): above 1, each
   * of that many workers computes the gradients of its share of every batch
   * and all apply the same averaged update (data-parallel.ts).
   */
  threads?: number;
  onProgress?: (event: ProgressEvent) => void;
}

/** What every step of a run reads, defaults applied. */
export type StepSettings = Required<
  Pick<TrainOptions, 'epochs' | 'batchSize' | 'learningRate' | 'schedule' | 'seed' | 'augment' | 'labelSmoothing'>
>;

/** The defaults in one place, so a run on one thread and on N take the same steps. */
export function stepSettings(options: TrainOptions): StepSettings {
  const {
    epochs,
    batchSize,
    learningRate = 1e-3,
    schedule = 'cosine',
    seed = 42,
    augment = false,
    labelSmoothing = 0,
  } = options;
  return { epochs, batchSize, learningRate, schedule, seed, augment, labelSmoothing };
}

export type ProgressEvent =
  | { type: 'batch'; epoch: number; epochs: number; batch: number; batches: number; loss: number }
  | ({ type: 'epoch' } & EpochResult);

export interface EpochResult {
  epoch: number;
  epochs: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  seconds: number;
}

export interface TrainResult {
  history: EpochResult[];
  secondsPerEpoch: number;
  /** Examples per epoch, repetitions of `extra` included. */
  trainCount: number;
  validationCount: number;
  /** Whether the training images were augmented; absent from versions stored before the option existed. */
  augment?: boolean;
  /** Threads the steps ran on; absent from versions stored before the option existed. */
  threads?: number;
}

/** How many of `count` examples the validation split takes: the last ones. */
export function validationCountOf(count: number, validationSplit: number): number {
  return Math.floor(count * validationSplit);
}

/** Share of the run held at the base rate before the cosine decay starts. */
export const COSINE_HOLD = 0.5;
/** Share of the run 'warmup-cosine' spends rising linearly to the base rate. */
export const WARMUP = 0.15;

/**
 * The learning rate at a step. 'cosine' holds the base rate for the first
 * half of the run, then anneals it to zero: the last epochs take small steps
 * (worth ~0.3 points of MLP test accuracy after 10 epochs), while a short run
 * is not slowed down from its first step.
 */
export function learningRateAt(schedule: Schedule, base: number, step: number, totalSteps: number): number {
  if (schedule === 'constant') return base;
  if (schedule === 'warmup-cosine') {
    const warmup = totalSteps * WARMUP;
    // Capped: with a warm-up of a fractional number of steps its last step would overshoot.
    if (step < warmup) return base * Math.min(1, (step + 1) / warmup);
    return (base * (1 + Math.cos((Math.PI * (step - warmup)) / (totalSteps - warmup)))) / 2;
  }
  const hold = totalSteps * COSINE_HOLD;
  if (step < hold) return base;
  return (base * (1 + Math.cos((Math.PI * (step - hold)) / (totalSteps - hold)))) / 2;
}

/** Which examples train and which validate, as every thread of a run computes them. */
export interface TrainingPlan {
  /** `data`, with `extra` appended when there is one: what the training indices point into. */
  examples: LabelledImages;
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  /** Full batches per epoch; the examples after the last full batch of a shuffle sit that epoch out. */
  batches: number;
}

export function planTraining(
  data: LabelledImages,
  { batchSize, validationSplit = 0.1, extra }: Pick<TrainOptions, 'batchSize' | 'validationSplit' | 'extra'>,
): TrainingPlan {
  const validationCount = validationCountOf(data.count, validationSplit);
  const validationIndices = range(data.count - validationCount, data.count);
  // Without extra examples the indices, and so the shuffles, are exactly what they were before they existed.
  let trainIndices = range(0, data.count - validationCount);
  let examples = data;
  if (extra) {
    const repeated = repeatedRange(data.count, data.count + extra.data.count, extra.repeat);
    const both = new Int32Array(trainIndices.length + repeated.length);
    both.set(trainIndices);
    both.set(repeated, trainIndices.length);
    trainIndices = both;
    examples = appendImages(data, extra.data);
  }
  if (trainIndices.length < batchSize)
    throw new RangeError(`need at least one full batch: ${trainIndices.length} examples < batch size ${batchSize}`);
  return { examples, trainIndices, validationIndices, batches: Math.floor(trainIndices.length / batchSize) };
}

/**
 * Trains with Adam on categorical cross-entropy. A hand-written loop rather
 * than `model.fit`: fit's per-batch callbacks and awaits cost more than the
 * maths on a small MLP. The loss, its gradient and the batch accuracy come
 * from one read of the probabilities (`trainingLoss`), and on wasm Adam is
 * one function call per variable (HeapAdam). With `threads` above 1 the
 * steps run data-parallel in worker threads (data-parallel.ts); with 1 they
 * run here, on this thread, exactly as before threads existed.
 */
export async function trainModel(
  model: tfl.LayersModel,
  data: LabelledImages,
  options: TrainOptions,
): Promise<TrainResult> {
  const plan = planTraining(data, options);
  const threads = Math.min(options.threads ?? 1, options.batchSize);
  const history =
    threads > 1 ? await trainDataParallel(model, plan, options, threads) : await trainHere(model, data, plan, options);
  const secondsPerEpoch = history.reduce((sum, e) => sum + e.seconds, 0) / Math.max(1, history.length);
  return {
    history,
    secondsPerEpoch,
    trainCount: plan.trainIndices.length,
    validationCount: plan.validationIndices.length,
    augment: stepSettings(options).augment,
    threads,
  };
}

/** The steps on this thread: the single-threaded loop. */
async function trainHere(
  model: tfl.LayersModel,
  data: LabelledImages,
  { examples, trainIndices, validationIndices, batches }: TrainingPlan,
  options: TrainOptions,
): Promise<EpochResult[]> {
  const { epochs, batchSize, learningRate, schedule, seed, augment, labelSmoothing } = stepSettings(options);
  const { onProgress } = options;
  registerTrainingKernels();
  const reseedDropout = dropoutReseeder(model);
  const validationCount = validationIndices.length;
  const random = seededRandom(seed);
  // A stream of its own, so turning augmentation on leaves the shuffles unchanged.
  const distort = augment ? seededRandom(seed + 1) : undefined;
  const optimizer = adam(learningRate);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const reportEvery = reportInterval(batches);
  const history: EpochResult[] = [];
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
        const batch = order.subarray(b * batchSize, (b + 1) * batchSize);
        const x = toInputs(examples, batch, distort);
        const labels = Array.from(batch, (index) => examples.labels[index]!);
        const score: BatchScore = { loss: 0, correct: 0 };
        optimizer.minimize(
          () => trainingLoss(model.apply(x, { training: true }) as tf.Tensor, labels, score, labelSmoothing),
          false,
          variables,
        );
        x.dispose();
        lossSum += score.loss;
        correct += score.correct;
        if (onProgress && (b % reportEvery === 0 || b === batches - 1)) {
          onProgress({ type: 'batch', epoch, epochs, batch: b + 1, batches, loss: score.loss });
        }
      }
      const result: EpochResult = {
        epoch,
        epochs,
        loss: lossSum / batches,
        accuracy: correct / (batches * batchSize),
        seconds: (performance.now() - started) / 1000,
      };
      if (validationCount > 0) {
        const validation = await evaluateIndices(model, data, validationIndices);
        result.valLoss = validation.loss;
        result.valAccuracy = validation.accuracy;
      }
      history.push(result);
      onProgress?.({ type: 'epoch', ...result });
    }
  } finally {
    optimizer.dispose();
  }
  return history;
}

/** Batch progress about 50 times an epoch, and at its last batch. */
export function reportInterval(batches: number): number {
  return Math.max(1, Math.floor(batches / 50));
}
