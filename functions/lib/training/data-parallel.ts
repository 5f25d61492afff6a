/**
 * Training on several cores: tfjs turns the wasm backend's own threads off
 * under Node, so the parallelism sits above tfjs. `threads` worker threads
 * each run a replica of the model on their own backend (replica.ts) and
 * compute the gradients of their share of every batch; they combine them
 * through shared memory (exchange.ts) and apply the same Adam update, so the
 * replicas stay identical. This thread only coordinates: it hands out the
 * model and the data (the images once, on shared memory), turns the
 * replicas' reports into the loop's progress events and epoch results, and
 * takes rank 0's weights at the end. It never blocks, so a replica that
 * fails (an error, or an exit before it is done) is seen at once: the run is
 * aborted, the replicas waiting for the failed one are woken and every
 * worker is terminated before the run rejects with the failure.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { currentBackend } from '../backend.ts';
import type { BackendName } from '../config.ts';
import type { LabelledImages } from './batches.ts';
import { abortExchange, exchangeBuffers } from './exchange.ts';
import type { ReplicaEpoch, ReplicaInit, ReplicaMessage, Topology } from './replica.ts';
import { type EpochResult, stepSettings, type TrainingPlan, type TrainOptions } from './train-loop.ts';

/** How to start a replica's worker: a module's URL, or (eval) a script's source. */
export interface WorkerEntry {
  script: URL | string;
  eval?: boolean;
}

/**
 * A worker that runs a TypeScript module through tsx. Under Node 20 a
 * worker's `--import tsx` registers its hooks after the worker's entry has
 * already failed to load, so a one-line script registers them and then
 * imports the module.
 */
export function typeScriptWorker(module: URL): WorkerEntry {
  const api = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  return {
    script: `import(${api}).then(({ register }) => { register(); return import(${JSON.stringify(module.href)}); });`,
    eval: true,
  };
}

/**
 * The replica's entry module: from the TypeScript sources (npm run train,
 * the tests) train-worker.ts through tsx; from the training image's bundle
 * (infra/train.Dockerfile) train-worker.mjs beside train.mjs, bundled from
 * the same file.
 */
export function trainWorkerEntry(): WorkerEntry {
  if (import.meta.url.endsWith('.ts')) return typeScriptWorker(new URL('./train-worker.ts', import.meta.url));
  return { script: new URL('./train-worker.mjs', import.meta.url) };
}

/**
 * Threads when none are asked for: one per core, except on native
 * TensorFlow, which spreads each operation over the cores itself.
 */
export function defaultThreads(backend: BackendName): number {
  return backend === 'node' ? 1 : os.availableParallelism();
}

export class TrainingWorkerError extends Error {
  override name = 'TrainingWorkerError';
}

/** A copy of `data` on shared memory, which workers read without copies of their own. */
function shared(data: LabelledImages): LabelledImages {
  const images = new Uint8Array(new SharedArrayBuffer(data.images.length));
  images.set(data.images);
  const labels = new Uint8Array(new SharedArrayBuffer(data.labels.length));
  labels.set(data.labels);
  return { images, labels, count: data.count };
}

/** Runs the plan's epochs on `threads` workers and leaves the trained weights in `model`. */
export function trainDataParallel(
  model: tfl.LayersModel,
  plan: TrainingPlan,
  options: TrainOptions,
  threads: number,
  entry: WorkerEntry = trainWorkerEntry(),
): Promise<EpochResult[]> {
  const settings = stepSettings(options);
  const { epochs } = settings;
  const params = model.trainableWeights.reduce((sum, w) => sum + w.read().size, 0);
  const exchange = exchangeBuffers(threads, params);
  const common: Omit<ReplicaInit, 'rank'> = {
    threads,
    backend: currentBackend(),
    topology: model.toJSON(null, false) as Topology,
    weights: model.getWeights().map((w) => w.dataSync() as Float32Array),
    examples: shared(plan.examples),
    trainIndices: plan.trainIndices,
    validationIndices: plan.validationIndices,
    batches: plan.batches,
    settings,
    exchange,
  };
  return new Promise((resolve, reject) => {
    const history: EpochResult[] = [];
    const epochParts = new Map<number, ReplicaEpoch[]>();
    let weights: Float32Array[] | undefined;
    let failure: Error | undefined;
    const done = new Set<number>();
    let exited = 0;

    const finish = () => {
      if (failure) return reject(failure);
      if (!weights) return reject(new TrainingWorkerError('the training workers finished without the trained weights'));
      try {
        const values = weights.map((data, i) => tf.tensor(data, model.weights[i]!.read().shape));
        model.setWeights(values);
        tf.dispose(values);
        resolve(history);
      } catch (error) {
        reject(error);
      }
    };

    const fail = (rank: number, error: Error) => {
      if (failure) return;
      failure = new TrainingWorkerError(`training worker ${rank + 1} of ${threads} failed: ${error.message}`, {
        cause: error,
      });
      abortExchange(exchange);
      for (const worker of workers) void worker.terminate();
    };

    const epochDone = (parts: ReplicaEpoch[]) => {
      const training = parts.find((part) => part.training)?.training;
      if (!training) throw new TrainingWorkerError('no worker reported the epoch’s training figures');
      const epoch = parts[0]!.epoch;
      const result: EpochResult = { epoch, epochs, ...training };
      const count = parts.reduce((sum, part) => sum + part.validation.count, 0);
      if (count > 0) {
        result.valLoss = parts.reduce((sum, part) => sum + part.validation.lossSum, 0) / count;
        result.valAccuracy = parts.reduce((sum, part) => sum + part.validation.correct, 0) / count;
      }
      history.push(result);
      options.onProgress?.({ type: 'epoch', ...result });
    };

    const receive = (message: ReplicaMessage) => {
      switch (message.type) {
        case 'batch':
          options.onProgress?.({ ...message, epochs, batches: plan.batches });
          break;
        case 'epoch': {
          const parts = epochParts.get(message.epoch) ?? [];
          parts.push(message);
          epochParts.set(message.epoch, parts);
          if (parts.length === threads) {
            epochParts.delete(message.epoch);
            epochDone(parts);
          }
          break;
        }
        case 'weights':
          weights = message.values;
          break;
        case 'done':
          done.add(message.rank);
          break;
      }
    };

    const start = (rank: number) => {
      const worker = new Worker(entry.script, {
        eval: entry.eval ?? false,
        workerData: { ...common, rank } satisfies ReplicaInit,
      });
      worker.on('message', (message: ReplicaMessage) => {
        try {
          receive(message);
        } catch (error) {
          fail(rank, error as Error);
        }
      });
      worker.on('error', (error) => fail(rank, error));
      worker.on('messageerror', (error) => fail(rank, error));
      worker.on('exit', (code) => {
        if (!done.has(rank)) fail(rank, new Error(`it exited (code ${code}) before the run was done`));
        if (++exited === workers.length) finish();
      });
      return worker;
    };
    // Exits come as events, after this loop: a worker that cannot be started stops the loop, and the run
    // ends once those already started have exited.
    const workers: Worker[] = [];
    for (let rank = 0; rank < threads && !failure; rank++) {
      try {
        workers.push(start(rank));
      } catch (error) {
        fail(rank, error as Error);
      }
    }
    if (workers.length === 0) finish();
  });
}
