/**
 * `npm run bench -- train [--arch mlp|cnn|all] [--epochs N] [--batch-size N] [--threads N[,N…]]
 * [--vs-pytorch [--rounds N]]`: trains on the full 60,000 images on the
 * active backend and prints ms/step and s/epoch per architecture and thread
 * count (default: one thread per core, as `npm run train`). With
 * `--vs-pytorch`, the same architectures also train in PyTorch on one thread
 * (pytorch_train.py: same batch size, optimiser, learning rate and schedule,
 * 60,000 images an epoch from the same files), and a line per run gives
 * tfjs's time over PyTorch's. With `--rounds N` the two take turns N times
 * and a last line gives the median ratio: PyTorch's one-thread step on these
 * machines moved from 17.5 to 30 ms between runs minutes apart, so one
 * pair of runs says more about that minute than about either framework.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '#lib/backend';
import { MAX_TRAIN_THREADS, readConfig } from '#lib/config';
import { loadMnist, type Mnist } from '#lib/training/mnist';
import { defaultThreads } from '#lib/training/data-parallel';
import { evaluateModel } from '#lib/training/evaluate';
import { ARCHS, createModel, isArch, type Arch } from '#lib/training/model';
import { TRAINING_DEFAULTS, trainModel } from '#lib/training/train-loop';
import { CliError } from '../cli/run.ts';
import { pythonWith } from './python.ts';
import { machine, median, round } from './stats.ts';

const PYTORCH_SCRIPT = fileURLToPath(new URL('./pytorch_train.py', import.meta.url));

const MAX_ROUNDS = 9;

const emit = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);

function threadCounts(raw: string): number[] {
  return raw.split(',').map((part) => {
    const value = Number(part);
    if (!Number.isInteger(value) || value < 1 || value > MAX_TRAIN_THREADS)
      throw new CliError(
        `--threads takes whole numbers from 1 to ${MAX_TRAIN_THREADS}, comma-separated; got "${raw}"`,
        2,
      );
    return value;
  });
}

/** Runs pytorch_train.py for one architecture and returns its JSON lines. */
function trainInPytorch(
  python: string,
  mnistDir: string,
  arch: Arch,
  settings: { batchSize: number; learningRate: number; epochs: number },
): Record<string, unknown>[] {
  const args = [
    PYTORCH_SCRIPT,
    ['--mnist-dir', mnistDir],
    ['--arch', arch],
    ['--batch-size', String(settings.batchSize)],
    ['--lr', String(settings.learningRate)],
    ['--epochs', String(settings.epochs)],
  ].flat();
  // One thread: the libraries' own pools read these before torch.set_num_threads(1) can.
  const env = { ...process.env, OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const run = spawnSync(python, args, { env, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.status !== 0) throw new CliError(`pytorch_train.py failed (exit ${run.status}):\n${run.stderr.trim()}`);
  return run.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** One tfjs training run on `threads` threads: its speed and the test accuracy it reached. */
async function trainInTfjs(
  arch: Arch,
  data: Mnist,
  settings: { batchSize: number; learningRate: number; epochs: number; threads: number },
): Promise<Record<string, unknown>> {
  const { batchSize, epochs } = settings;
  const model = createModel({ arch });
  const started = performance.now();
  const result = await trainModel(model, data.train, settings);
  // The whole call: the workers' start-up and the validation passes too, which the per-epoch figures leave out.
  const trainSeconds = (performance.now() - started) / 1000;
  const test = await evaluateModel(model, data.test);
  const steps = Math.floor(result.trainCount / batchSize);
  const params = model.countParams();
  model.dispose();
  return {
    threads: result.threads,
    params,
    batchSize,
    epochs,
    msPerStep: round((result.secondsPerEpoch * 1000) / steps),
    secondsPerEpoch: round(result.secondsPerEpoch),
    secondsPer60kEpoch: round((result.secondsPerEpoch * 60_000) / result.trainCount),
    trainSeconds: round(trainSeconds),
    testAccuracy: test.accuracy,
  };
}

export async function benchTrain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string', default: 'all' },
      epochs: { type: 'string', default: '1' },
      'batch-size': { type: 'string' },
      threads: { type: 'string' },
      'vs-pytorch': { type: 'boolean', default: false },
      rounds: { type: 'string', default: '1' },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS)
    throw new CliError(`--rounds takes a whole number from 1 to ${MAX_ROUNDS}; got "${values.rounds}"`, 2);
  if (values.arch !== 'all' && !isArch(values.arch))
    throw new CliError(`--arch must be all or one of ${ARCHS.join(', ')}; got "${values.arch}"`, 2);
  const archs: Arch[] = values.arch === 'all' ? [...ARCHS] : [values.arch];
  const epochs = Number(values.epochs);
  const config = readConfig();
  const python = values['vs-pytorch']
    ? pythonWith(
        ['torch', 'numpy'],
        '--vs-pytorch',
        'Debian/Ubuntu: apt-get install python3-torch python3-numpy; elsewhere: pip install torch numpy',
      )
    : undefined;
  if (python && !config.mnistDir)
    throw new CliError('--vs-pytorch reads MNIST from MNIST_DIR in both frameworks: set MNIST_DIR', 2);
  const backend = await initBackend(undefined, config.tfjsBackend);
  const threadsList = values.threads ? threadCounts(values.threads) : [defaultThreads(backend)];
  const data = await loadMnist({
    dir: config.mnistDir && path.resolve(config.mnistDir),
    cacheDir: path.join(config.dataDir, 'mnist'),
  });
  emit({ bench: 'train', machine: machine(), backend });
  for (const arch of archs) {
    // The same defaults as `npm run train`, so the accuracy column matches what users get.
    const { learningRate, batchSize: defaultBatch } = TRAINING_DEFAULTS[arch];
    const batchSize = values['batch-size'] ? Number(values['batch-size']) : defaultBatch;
    const ratios = new Map<number, number[]>();
    for (let turn = 1; turn <= rounds; turn++) {
      // Lines name their round only when there are several.
      const tag = rounds > 1 ? { round: turn } : {};
      const tfjs: Record<string, unknown>[] = [];
      for (const threads of threadsList) {
        const line = {
          arch,
          ...tag,
          backend,
          ...(await trainInTfjs(arch, data, { batchSize, learningRate, epochs, threads })),
        };
        emit(line);
        tfjs.push(line);
      }
      if (python && config.mnistDir) {
        const lines = trainInPytorch(python, path.resolve(config.mnistDir), arch, { batchSize, learningRate, epochs });
        lines.forEach((line) => emit({ ...line, ...tag }));
        const pytorch = lines.find((line) => line.arch === arch);
        if (!pytorch) throw new CliError(`pytorch_train.py printed no result for ${arch}`);
        for (const line of tfjs) {
          const ratio = (line.secondsPer60kEpoch as number) / (pytorch.secondsPer60kEpoch as number);
          ratios.set(line.threads as number, [...(ratios.get(line.threads as number) ?? []), ratio]);
          emit({
            arch,
            ...tag,
            compare: 'tfjs / pytorch (1 thread)',
            threads: line.threads,
            ratioPer60kEpoch: round(ratio),
            tfjsSecondsPer60kEpoch: line.secondsPer60kEpoch,
            pytorchSecondsPer60kEpoch: pytorch.secondsPer60kEpoch,
            tfjsTestAccuracy: line.testAccuracy,
            pytorchTestAccuracy: pytorch.testAccuracy,
          });
        }
      }
    }
    if (rounds > 1)
      for (const [threads, list] of ratios)
        emit({
          arch,
          compare: `tfjs / pytorch (1 thread), median of ${rounds} rounds`,
          threads,
          ratioPer60kEpoch: round(median(list)),
          ratios: list.map((r) => round(r)),
        });
  }
  tf.disposeVariables();
}
