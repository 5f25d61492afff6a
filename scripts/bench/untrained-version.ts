/**
 * A second version for the benches that need two models serving (a shadow or
 * canary candidate): an untrained MLP stored with the serving version's
 * metrics. Inference costs the same whatever the weights, and training a
 * second model would add minutes to every run.
 */
import { createModel } from '#lib/training/model';
import { type ModelStore, versionName } from '#lib/storage/store';

/** Stores it under a name one second after now (after the serving version's) and returns that name. */
export async function storeUntrainedVersion(store: ModelStore): Promise<string> {
  const serving = (await store.latest())?.version;
  if (!serving) throw new Error('no serving version to copy the metrics of');
  const { artifacts: _, ...metrics } = (await store.metrics(serving))!;
  const version = versionName('mlp', new Date(Date.now() + 1000));
  const model = createModel({ arch: 'mlp', seed: 7 });
  await store.save(model, { ...metrics, version, createdAt: new Date().toISOString() });
  model.dispose();
  return version;
}
