/**
 * A data-parallel run's worker thread (data-parallel.ts starts it): trains
 * one replica and reports to the coordinating thread. An error ends the
 * worker with it, which fails the run.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runReplica, type ReplicaInit, type ReplicaMessage } from './replica.ts';

const port = parentPort;
if (!port) throw new Error('train-worker.ts runs as a worker thread of a data-parallel training run');
await runReplica(workerData as ReplicaInit, (message: ReplicaMessage) =>
  port.postMessage(message, message.type === 'weights' ? message.values.map((v) => v.buffer as ArrayBuffer) : []),
);
