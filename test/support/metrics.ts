/** The training record of a model the tests build without training it: what a version's metrics must carry. */
import type { MetricsInput } from '#lib/storage/store';

export function untrainedTraining(batchSize: number): MetricsInput['training'] {
  return {
    epochs: 1,
    batchSize,
    learningRate: 0.001,
    schedule: 'cosine',
    seed: 1,
    history: [],
    secondsPerEpoch: 0,
    trainCount: 0,
    validationCount: 0,
  };
}
