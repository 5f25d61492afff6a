import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initBackend, tf } from '#lib/backend';
import { ModelIntegrityError } from '#lib/errors';
import { inferenceModel } from '#lib/inference-model';
import { ARCHS, type Arch, createModel } from '#lib/training/model';

before(async () => {
  // The backend the predict function serves on.
  await initBackend(['wasm']);
});

interface Stored {
  topology: { class_name: string; config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
  weightData: ArrayBuffer;
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** A tfjs-layers model as the store saves it (topology JSON and weight bytes), and the model itself. */
async function stored(arch: Arch, seed = 3) {
  const model = createModel({ arch, seed });
  let saved!: Stored;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = {
        topology: JSON.parse(JSON.stringify(artifacts.modelTopology)),
        weightData: tf.io.CompositeArrayBuffer.join(artifacts.weightData),
        weightSpecs: artifacts.weightSpecs!,
      };
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return { model, saved, weights: () => tf.io.decodeWeights(saved.weightData, saved.weightSpecs) };
}

describe('inferenceModel', () => {
  for (const arch of ARCHS) {
    test(`gives the ${arch}'s tfjs-layers probabilities for a batch, within float tolerance`, async () => {
      const { model, saved, weights } = await stored(arch);
      const served = inferenceModel(saved.topology, weights());
      const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 9);
      const expected = tf.tidy(() => (model.predict(x) as tf.Tensor).arraySync() as number[][]);
      const actual = tf.tidy(() => served.predict(x).arraySync() as number[][]);
      assert.equal(actual.length, 8);
      actual.forEach((row, i) => {
        assert.equal(row.length, 10);
        row.forEach((p, c) =>
          assert.ok(Math.abs(p - expected[i]![c]!) < 1e-6, `row ${i} class ${c}: ${p} vs ${expected[i]![c]}`),
        );
      });
      assert.equal(served.countParams(), model.countParams());
      tf.dispose(x);
      model.dispose();
      served.dispose();
    });
  }

  test('leaves no tensor behind a prediction, and frees its weights when disposed', async () => {
    const { model, saved, weights } = await stored('cnn');
    model.dispose();
    const before = tf.memory().numTensors;
    const served = inferenceModel(saved.topology, weights());
    const x = tf.zeros([2, 28, 28, 1]);
    tf.dispose(served.predict(x));
    tf.dispose(x);
    served.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  test('refuses an input of another shape with a RangeError', async () => {
    const { model, saved, weights } = await stored('mlp');
    model.dispose();
    const served = inferenceModel(saved.topology, weights());
    const x = tf.zeros([1, 14, 14, 1]);
    assert.throws(() => served.predict(x), RangeError);
    tf.dispose(x);
    served.dispose();
  });

  const refusals: [string, (topology: Stored['topology'], specs: tf.io.WeightsManifestEntry[]) => void, RegExp][] = [
    [
      'a layer class it does not serve',
      (t) => (t.config.layers[1]!.class_name = 'BatchNormalization'),
      /layer class "BatchNormalization" is not one this service serves/,
    ],
    ['an unknown activation', (t) => (t.config.layers[1]!.config.activation = 'gelu'), /activation "gelu"/],
    [
      'a weight the topology does not name',
      (_, specs) => (specs[0]!.name = 'other/kernel'),
      /dense_Dense\d+\/kernel is missing/,
    ],
    [
      'a weight of another shape',
      (t) => (t.config.layers[0]!.config.batch_input_shape = [null, 28, 28, 2]),
      /kernel has shape \[784,256\]; the topology needs \[1568,256\]/,
    ],
    ['a topology that is not Sequential', (t) => (t.class_name = 'Model'), /must be a Sequential model/],
    [
      'channels_first data',
      (t) => Object.assign(t.config.layers[0]!.config, { data_format: 'channels_first' }),
      /only channels_last/,
    ],
  ];
  for (const [what, damage, message] of refusals) {
    test(`refuses ${what} with a ModelIntegrityError, freeing the weights`, async () => {
      const { model, saved } = await stored(what === 'channels_first data' ? 'cnn' : 'mlp');
      model.dispose();
      const specs = saved.weightSpecs.map((spec) => ({ ...spec }));
      damage(saved.topology, specs);
      const before = tf.memory().numTensors;
      assert.throws(
        () => inferenceModel(saved.topology, tf.io.decodeWeights(saved.weightData, specs)),
        (error: Error) => error instanceof ModelIntegrityError && message.test(error.message),
      );
      assert.equal(tf.memory().numTensors, before);
    });
  }

  test('refuses weights no layer uses', async () => {
    const { model, saved, weights } = await stored('mlp');
    model.dispose();
    const extra = { ...weights(), 'stray/kernel': tf.zeros([2]) };
    assert.throws(() => inferenceModel(saved.topology, extra), /stray\/kernel, which no layer uses/);
  });
});
