/**
 * The training job: loads MNIST, trains, evaluates on the 10,000 test images,
 * stores the version with the input profile drift is later measured against,
 * and promotes it if it passes the quality gate (or `--force`). `main.ts` is
 * the thin command-line entry around it.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend, tf } from '#lib/backend';
import { MAX_TRAIN_THREADS, type BackendName, type Config } from '#lib/config';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { loadMnist, type MnistSplit } from '#lib/training/mnist';
import { AUGMENTATION } from '#lib/training/batches';
import { evaluateModel } from '#lib/training/evaluate';
import { ARCHS, countParams, createModel, isArch, type Arch } from '#lib/training/model';
import { defaultThreads } from '#lib/training/data-parallel';
import {
  SCHEDULES,
  TRAINING_DEFAULTS,
  trainModel,
  validationCountOf,
  WARMUP,
  type Schedule,
} from '#lib/training/train-loop';
import type { ProgressSink } from '#lib/progress';
import { renderReport } from '#lib/report';
import { ModelIntegrityError, PointerChangedError } from '#lib/errors';
import { PROFILE_FILE, profileOf, type ProfileSample } from '#lib/live/profile';
import { readLiveData } from '#lib/live/read';
import { MNIST_PIXELS } from '#lib/mnist-shape';
import type { Logger } from '#lib/log';
import type { LabelledImages } from '#lib/training/batches';
import { feedbackBudget, newest, splitLiveData, type LiveSplit } from '#lib/training/live-data';
import { openStorage, type Storage } from '#lib/storage/storage';
import { qualityGate } from '#lib/training/quality-gate';
import { AUDIT_REASON_MAX_CHARS } from '#lib/storage/audit';
import { ModelStore, versionName, type LiveHoldoutScore, type ModelMetrics } from '#lib/storage/store';

/** How much users' corrections count by default: see `feedbackBudget` and TrainOptions.extra. */
export const FEEDBACK_DEFAULTS = { weight: 3, maxShare: 0.1 } as const;

export const USAGE = `Usage: npm run train -- [options]

Trains a digit classifier on MNIST, evaluates it on the 10,000 test images
(and on the live holdout: users' labelled drawings no version trains on),
stores it as a new model version and promotes it if it passes the quality gate.

Options (environment variable in brackets):
  --arch mlp|cnn          architecture (ARCH; default mlp)
  --epochs N              passes over the training set (EPOCHS; default 10)
  --batch-size N          examples per step (BATCH_SIZE; default mlp ${TRAINING_DEFAULTS.mlp.batchSize}, cnn ${TRAINING_DEFAULTS.cnn.batchSize})
  --learning-rate X       Adam learning rate (default mlp ${TRAINING_DEFAULTS.mlp.learningRate}, cnn ${TRAINING_DEFAULTS.cnn.learningRate})
  --lr-schedule S         cosine (hold for half the run, then anneal to zero),
                          warmup-cosine (rise over the first ${WARMUP * 100}%, then anneal to zero)
                          or constant (default mlp ${TRAINING_DEFAULTS.mlp.schedule}, cnn ${TRAINING_DEFAULTS.cnn.schedule})
  --label-smoothing X     cross-entropy label smoothing, 0 to 0.5 (default mlp ${TRAINING_DEFAULTS.mlp.labelSmoothing}, cnn ${TRAINING_DEFAULTS.cnn.labelSmoothing})
  --validation-split X    fraction held out for validation (default 0.1)
  --seed N                seed for initialisation and shuffling (default 42)
  --train-limit N         train on the first N examples only (quick runs)
  --threads N             threads the training steps run on, 1 to ${MAX_TRAIN_THREADS} (TRAIN_THREADS; default
                          one per core, or 1 on native TensorFlow); 1 is the single-threaded loop
  --augment               randomly shift (±${AUGMENTATION.shiftPixels} px), rotate (±${AUGMENTATION.rotationDegrees}°) and scale (±${AUGMENTATION.scale * 100}%) training images
  --no-augment            train on the images as they are (default: cnn augments, mlp does not)
  --with-feedback         also train on users' corrections outside the live holdout
                          (WITH_FEEDBACK=true|false; default false)
  --feedback-weight N     times each correction is repeated per epoch, 1 to 10 (default ${FEEDBACK_DEFAULTS.weight})
  --feedback-max-share X  the corrections' largest share of the training set,
                          repetitions included, 0.01 to 0.5 (default ${FEEDBACK_DEFAULTS.maxShare})
  --force                 promote even if the quality gate refuses
  --reason TEXT           why the gate is overridden (logged with --force)
  -h, --help              this text

Storage: BUCKET (+ S3_ENDPOINT for an S3-compatible server); with neither,
an embedded S3 is started with its data under .data/. MNIST comes from
MNIST_DIR if set, else the bucket's datasets/mnist/, else a download.`;

export interface TrainArgs {
  arch: Arch;
  epochs: number;
  batchSize: number;
  learningRate: number;
  schedule: Schedule;
  labelSmoothing: number;
  validationSplit: number;
  seed: number;
  trainLimit?: number;
  /** --threads; unset, TRAIN_THREADS or one per core decides (`threadsFor`). */
  threads?: number;
  augment: boolean;
  /** Set by --with-feedback: train on the labelled captures outside the live holdout too. */
  feedback?: { weight: number; maxShare: number };
  force: boolean;
  reason?: string;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function integer(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be a whole number from ${min} to ${max}; got "${raw}"`);
  return value;
}

function fraction(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw new UsageError(`${name} must be a number from ${min} to ${max}; got "${raw}"`);
  return value;
}

/** A true/false environment variable; anything else is a mistake worth stopping for. */
function switchFrom(name: string, raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new UsageError(`${name} must be true or false; got "${raw}"`);
}

/** Flags win over the environment variables the Batch job definition sets. */
export function parseTrainArgs(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): TrainArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      arch: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      'learning-rate': { type: 'string' },
      'lr-schedule': { type: 'string' },
      'validation-split': { type: 'string' },
      seed: { type: 'string' },
      'train-limit': { type: 'string' },
      threads: { type: 'string' },
      augment: { type: 'boolean' },
      'no-augment': { type: 'boolean' },
      'label-smoothing': { type: 'string' },
      'with-feedback': { type: 'boolean' },
      'feedback-weight': { type: 'string' },
      'feedback-max-share': { type: 'string' },
      force: { type: 'boolean', default: false },
      reason: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const arch = values.arch ?? env.ARCH ?? 'mlp';
  if (!isArch(arch)) throw new UsageError(`--arch must be one of ${ARCHS.join(', ')}; got "${arch}"`);
  const defaults = TRAINING_DEFAULTS[arch];
  const schedule = values['lr-schedule'] ?? defaults.schedule;
  if (!(SCHEDULES as readonly string[]).includes(schedule))
    throw new UsageError(`--lr-schedule must be one of ${SCHEDULES.join(', ')}; got "${schedule}"`);
  if (values.augment && values['no-augment']) throw new UsageError('--augment and --no-augment contradict each other');
  const trainLimit =
    values['train-limit'] === undefined ? undefined : integer('--train-limit', values['train-limit'], 0, 256, 60_000);
  const withFeedback = values['with-feedback'] ?? switchFrom('WITH_FEEDBACK', env.WITH_FEEDBACK);
  if (!withFeedback && (values['feedback-weight'] !== undefined || values['feedback-max-share'] !== undefined))
    throw new UsageError('--feedback-weight and --feedback-max-share apply only with --with-feedback');
  const feedback = withFeedback
    ? {
        weight: integer('--feedback-weight', values['feedback-weight'], FEEDBACK_DEFAULTS.weight, 1, 10),
        maxShare: fraction('--feedback-max-share', values['feedback-max-share'], FEEDBACK_DEFAULTS.maxShare, 0.01, 0.5),
      }
    : undefined;
  return {
    arch,
    epochs: integer('--epochs', values.epochs ?? env.EPOCHS, 10, 1, 200),
    batchSize: integer('--batch-size', values['batch-size'] ?? env.BATCH_SIZE, defaults.batchSize, 1, 4096),
    learningRate: fraction('--learning-rate', values['learning-rate'], defaults.learningRate, 1e-6, 1),
    schedule: schedule as Schedule,
    labelSmoothing: fraction('--label-smoothing', values['label-smoothing'], defaults.labelSmoothing, 0, 0.5),
    validationSplit: fraction('--validation-split', values['validation-split'], 0.1, 0, 0.5),
    seed: integer('--seed', values.seed, 42, 0, 2 ** 31 - 1),
    trainLimit,
    ...(values.threads === undefined ? {} : { threads: integer('--threads', values.threads, 1, 1, MAX_TRAIN_THREADS) }),
    augment: values.augment ? true : values['no-augment'] ? false : defaults.augment,
    ...(feedback ? { feedback } : {}),
    force: values.force ?? false,
    reason: values.reason,
  };
}

/** The threads a run trains on: --threads, else TRAIN_THREADS, else one per core (1 on native TensorFlow). */
export function threadsFor(
  args: Pick<TrainArgs, 'threads'>,
  config: Pick<Config, 'trainThreads'>,
  backend: BackendName,
): number {
  return args.threads ?? config.trainThreads ?? defaultThreads(backend);
}

function firstN(split: MnistSplit, n: number | undefined): MnistSplit {
  if (n === undefined || n >= split.count) return split;
  return { images: split.images.subarray(0, n * 784), labels: split.labels.subarray(0, n), count: n };
}

export interface TrainOutcome {
  version: string;
  arch: Arch;
  epochs: number;
  backend: string;
  params: number;
  testAccuracy: number;
  testLoss: number;
  secondsPerEpoch: number;
  /** Threads the steps ran on. */
  threads: number;
  promoted: boolean;
  gate: { passed: boolean; reasons: string[]; notes?: string[]; forced: boolean };
  liveHoldout?: LiveHoldoutScore;
  feedback?: ModelMetrics['feedback'];
  /** Why a version the gate passed (or --force) was still not promoted. */
  notPromoted?: string;
  bucket: string;
}

/** Says why a promotion that lost the race was dropped: the gate judged it against a model that no longer serves. */
async function pointerMoved(
  store: ModelStore,
  version: string,
  decidedAgainst: string | undefined,
  forced: boolean,
): Promise<string> {
  const now = await store.latest().then(
    (p) => p?.version ?? 'nothing',
    () => 'an invalid pointer',
  );
  const was = decidedAgainst ?? 'no model';
  return (
    `${version} ${forced ? 'was forced past' : 'passed'} the gate but was not promoted: the serving pointer changed while it trained ` +
    `(it was ${was}, now ${now}); promote it with \`npm run promote -- ${version}\` if it should serve`
  );
}

function* testSamples(
  test: MnistSplit,
  answers: { digits: Uint8Array; confidences: Float32Array },
): Generator<ProfileSample> {
  for (let i = 0; i < test.count; i++) {
    yield {
      input: test.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS),
      digit: answers.digits[i]!,
      confidence: answers.confidences[i]!,
    };
  }
}

/** Labelled captures split into training and holdout; undefined when users have labelled none. */
async function readLiveSplit(storage: Storage, log: Logger): Promise<LiveSplit | undefined> {
  const live = await readLiveData(storage.objects);
  if (live.labelled.length === 0) return undefined;
  const split = splitLiveData(live.labelled);
  log.info('labelled captures read', {
    labelled: live.labelled.length,
    train: split.train.count,
    holdout: split.holdout.count,
    skipped: { ...live.skipped, badInputs: split.skipped },
  });
  return split;
}

/**
 * The newest corrections the share cap allows, counted against the MNIST
 * images that train (validation excluded), as `trainModel` will use them.
 */
function chooseFeedback(
  args: TrainArgs & { feedback: { weight: number; maxShare: number } },
  mnist: MnistSplit,
  live: LiveSplit | undefined,
  log: Logger,
): { extra?: { data: LabelledImages; repeat: number }; record: NonNullable<ModelMetrics['feedback']> } {
  const { weight, maxShare } = args.feedback;
  const mnistTraining = mnist.count - validationCountOf(mnist.count, args.validationSplit);
  const available = live?.train.count ?? 0;
  const chosen = live ? newest(live.train, feedbackBudget(mnistTraining, weight, maxShare)) : undefined;
  const used = chosen?.count ?? 0;
  const record = { used, available, weight, maxShare };
  log.info('feedback added to the training set', {
    ...record,
    share: used === 0 ? 0 : (used * weight) / (mnistTraining + used * weight),
  });
  return { ...(chosen && used > 0 ? { extra: { data: chosen, repeat: weight } } : {}), record };
}

/** The serving version's accuracy on the live holdout; undefined (and logged) if it cannot be loaded. */
async function scoreServing(
  store: ModelStore,
  version: string,
  holdout: LabelledImages,
  log: Logger,
): Promise<number | undefined> {
  let loaded: Awaited<ReturnType<ModelStore['load']>>;
  try {
    loaded = await store.load(version);
  } catch (error) {
    if (!(error instanceof ModelIntegrityError)) throw error;
    log.warn('the serving model could not be loaded to score it on the live holdout', { version, error });
    return undefined;
  }
  try {
    return (await evaluateModel(loaded.model, holdout, 0)).accuracy;
  } finally {
    loaded.model.dispose();
  }
}

export async function runTraining(
  args: TrainArgs,
  config: Config,
  progress: ProgressSink,
  open: (config: Config) => Promise<Storage> = openStorage,
): Promise<TrainOutcome> {
  const backend = await initBackend(undefined, config.tfjsBackend);
  const storage = await open(config);
  try {
    const log = logger.child({ job: 'train', arch: args.arch });
    const data = await loadMnist({
      dir: config.mnistDir ? path.resolve(config.mnistDir) : undefined,
      bucket: storage.objects,
      baseUrl: config.mnistBaseUrl,
      cacheDir: path.join(config.dataDir, 'mnist'),
      logger: log,
      onProgress: (p) => progress.update(p.loaded / p.total, 'downloading MNIST', { file: p.file }),
    });
    log.info('dataset ready', { source: data.source, train: data.train.count, test: data.test.count });
    const store = new ModelStore(storage.objects);
    // Read before training and promoted against with If-Match: a promotion or rollback made while this job
    // trains is never overwritten by it, and the gate compares against the model that was serving.
    const basis = await store.pointerState();
    if (basis.invalid)
      log.warn('the serving pointer is invalid; a promotion will replace it', { problem: basis.invalid });

    const live = await readLiveSplit(storage, log);
    const mnistTrain = firstN(data.train, args.trainLimit);
    const feedback = args.feedback
      ? chooseFeedback({ ...args, feedback: args.feedback }, mnistTrain, live, log)
      : undefined;

    const model = createModel({ arch: args.arch, seed: args.seed });
    const training = await trainModel(model, mnistTrain, {
      epochs: args.epochs,
      batchSize: args.batchSize,
      learningRate: args.learningRate,
      schedule: args.schedule,
      labelSmoothing: args.labelSmoothing,
      validationSplit: args.validationSplit,
      seed: args.seed,
      augment: args.augment,
      extra: feedback?.extra,
      threads: threadsFor(args, config, backend),
      onProgress: (event) => {
        if (event.type === 'batch') {
          progress.update(
            ((event.epoch - 1) * event.batches + event.batch) / (event.epochs * event.batches),
            `epoch ${event.epoch}/${event.epochs}`,
            {
              loss: event.loss,
            },
          );
        } else {
          const { type: _, ...fields } = event;
          progress.note('epoch', fields);
        }
      },
    });
    progress.done();
    const answers = { digits: new Uint8Array(data.test.count), confidences: new Float32Array(data.test.count) };
    const test = await evaluateModel(model, data.test, undefined, (index, digit, confidence) => {
      answers.digits[index] = digit;
      answers.confidences[index] = confidence;
    });
    const latest = basis.pointer;
    const current = latest && (await store.metrics(latest.version));
    let liveHoldout: LiveHoldoutScore | undefined;
    if (live && live.holdout.count > 0) {
      const accuracy = (await evaluateModel(model, live.holdout, 0)).accuracy;
      const servingAccuracy = current && (await scoreServing(store, current.version, live.holdout, log));
      liveHoldout = {
        count: live.holdout.count,
        accuracy,
        ...(current && servingAccuracy !== undefined ? { servingAccuracy, servingVersion: current.version } : {}),
      };
      log.info('scored on the live holdout', { ...liveHoldout });
    }
    // Decided before saving so the version records why it was or was not promoted.
    const gate = qualityGate(
      {
        arch: args.arch,
        accuracy: test.accuracy,
        ...(live ? { live: { count: live.holdout.count, accuracy: liveHoldout?.accuracy ?? Number.NaN } } : {}),
      },
      current
        ? {
            accuracy: current.test.accuracy,
            version: current.version,
            ...(liveHoldout?.servingAccuracy !== undefined ? { liveAccuracy: liveHoldout.servingAccuracy } : {}),
          }
        : undefined,
      config.minAccuracy,
      config.maxLiveRegression,
    );
    const version = versionName(args.arch, new Date());
    const metrics: Omit<ModelMetrics, 'artifacts'> = {
      version,
      arch: args.arch,
      ...(config.batchJobId ? { jobId: config.batchJobId } : {}),
      createdAt: new Date().toISOString(),
      backend,
      params: countParams(model),
      training: {
        ...training,
        epochs: args.epochs,
        batchSize: args.batchSize,
        learningRate: args.learningRate,
        schedule: args.schedule,
        labelSmoothing: args.labelSmoothing,
        seed: args.seed,
      },
      test,
      gate,
      ...(liveHoldout ? { liveHoldout } : {}),
      ...(feedback ? { feedback: feedback.record } : {}),
    };
    // The reference drift is measured against: the test images with this version's answers to them.
    const profile = profileOf(testSamples(data.test, answers));
    const saved = await store.save(model, metrics, [
      { name: PROFILE_FILE, body: JSON.stringify(profile), contentType: 'application/json' },
    ]);
    model.dispose();
    await store.attach(version, 'report.html', await renderReport(saved, data.test.images), 'text/html; charset=utf-8');
    log.info('model stored', { version, testAccuracy: test.accuracy, tensors: tf.memory().numTensors });

    const forced = !gate.passed && args.force;
    // A pin is an operator's word that nothing automatic changes the pointer; a training run is automatic.
    const pinned = basis.pointer?.pinned === true;
    let promoted = (gate.passed || args.force) && !pinned;
    let notPromoted: string | undefined;
    if ((gate.passed || args.force) && pinned) {
      notPromoted = `${version} was not promoted: ${latest?.version} is pinned by an operator (npm run promote -- --unpin ends that)`;
      log.warn('not promoted: the serving pointer is pinned', { version, serving: latest?.version });
    } else if (promoted) {
      const reason = forced ? (args.reason ?? 'forced from the command line') : undefined;
      const judged = forced
        ? `forced past the quality gate (${gate.reasons.join('; ')}): ${reason}`
        : `passed the quality gate with test accuracy ${(test.accuracy * 100).toFixed(2)}%`;
      try {
        await store.promote(version, {
          basedOn: basis,
          forcedReason: reason,
          by: { actor: 'training', reason: judged.slice(0, AUDIT_REASON_MAX_CHARS) },
        });
        if (forced) log.warn('quality gate overridden', { version, reasons: gate.reasons, reason });
        if (basis.pointer?.candidate)
          log.warn('the promotion ended the candidate', { version, candidate: basis.pointer.candidate });
        log.info('model promoted', { version, previous: latest?.version });
      } catch (error) {
        if (!(error instanceof PointerChangedError)) throw error;
        promoted = false;
        notPromoted = await pointerMoved(store, version, latest?.version, forced);
        log.warn('passed the gate but not promoted: the serving pointer changed while it trained', {
          version,
          reason: notPromoted,
        });
      }
    } else {
      log.warn('quality gate refused the new version; the serving model is unchanged', {
        version,
        reasons: gate.reasons,
        serving: latest?.version,
      });
    }
    const byArch = { arch: args.arch };
    const metricsLine = createMetrics(config.metrics.mode, { stage: config.stage, component: 'train' })
      .begin()
      .add('EpochSeconds', training.secondsPerEpoch, 'Seconds', byArch)
      .add('TestAccuracy', test.accuracy, 'None', byArch)
      .add('GatePassed', gate.passed ? 1 : 0, 'Count')
      .add('Promoted', promoted ? 1 : 0, 'Count');
    if (liveHoldout) metricsLine.add('LiveHoldoutAccuracy', liveHoldout.accuracy, 'None', byArch);
    metricsLine.flush(log);
    return {
      version,
      arch: args.arch,
      epochs: args.epochs,
      backend,
      params: metrics.params,
      testAccuracy: test.accuracy,
      testLoss: test.loss,
      secondsPerEpoch: training.secondsPerEpoch,
      threads: training.threads ?? 1,
      promoted,
      gate: { ...gate, forced },
      ...(liveHoldout ? { liveHoldout } : {}),
      ...(feedback ? { feedback: feedback.record } : {}),
      ...(notPromoted ? { notPromoted } : {}),
      bucket: storage.bucket,
    };
  } finally {
    await storage.close();
  }
}
