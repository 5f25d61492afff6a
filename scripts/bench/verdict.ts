/**
 * `npm run bench -- verdict [--fit] [--model mlp|cnn | --model-dir DIR] [--per-kind N] [--digits N]`:
 * how well the "not a digit" verdict (functions/lib/verdict.ts) tells
 * non-digits from real digits. Non-digits (non-digits.ts, N of each kind in
 * each form) and MNIST digits (3N raw pixels, and N re-rendered as canvas
 * drawings and N as paper photos by rerender.ts, N saved as 28×28 PNGs) go
 * through the real preprocessing and the tests' model
 * (test/support/test-model.ts: the 2-epoch MLP, cached under test/artifacts/),
 * or the model saved in `--model-dir` (model.json and weights.bin). Reports the share flagged per kind and
 * form, and per reason, as a Markdown table.
 *
 * `--fit` first fits the constants on MNIST training digits and non-digits
 * from one seed range, prints them to paste into verdict.ts, writes the
 * learned score into verdict-weights.ts (verdict-net-fit.ts), and evaluates
 * those; without it the constants in verdict.ts are evaluated.
 * Evaluation always uses MNIST test digits and non-digits from a disjoint
 * seed range. Design choices have been compared on that set, so
 * `--untouched` evaluates instead on a set none has seen: non-digits from a
 * third seed range, and MNIST test digits from UNTOUCHED_DIGITS on.
 */
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '#lib/backend';
import { classify } from '#lib/classify';
import { EmptyImageError } from '#lib/image/mnist-transform';
import { preprocessImage } from '#lib/image/preprocess';
import { encodeGreyPng } from '#lib/image/png-encode';
import { argmax, MNIST_CLASSES, MNIST_PIXELS, MNIST_SIDE } from '#lib/mnist-shape';
import { evaluateModel } from '#lib/training/evaluate';
import { loadMnist, type Mnist, type MnistSplit } from '#lib/training/mnist';
import { createModel } from '#lib/training/model';
import { TRAINING_DEFAULTS, trainModel } from '#lib/training/train-loop';
import {
  type ClassProfiles,
  digitVerdict,
  familyLogit,
  coarseImage,
  inkFeatures,
  NON_DIGIT_FAMILIES,
  topTwoMargin,
  type NonDigitFamily,
  VERDICT_FEATURES,
  VERDICT_REASONS,
  VERDICT_WEIGHTS,
  type VerdictReason,
  type VerdictScore,
  type VerdictWeights,
  verdictFeatures,
} from '#lib/verdict';
import { cachedModel } from '../../test/support/test-model.ts';
import { CALIBRATION_EVERY, fitNet, type NetOptions, writeNet } from './verdict-net-fit.ts';
import {
  NON_DIGIT_KINDS,
  NON_DIGIT_NAMES,
  type NonDigitKind,
  nonDigit,
  nonDigitPixels,
  type UploadForm,
} from './non-digits.ts';
import { benchMnistDir } from './local-stack.ts';
import { canvasDrawing, paperPhoto } from './rerender.ts';
import { machine } from './stats.ts';

/** Seeds of the non-digits fitted on and of those evaluated on: disjoint ranges. */
export const FIT_SEEDS = 1_000_000;
export const EVAL_SEEDS = 2_000_000;
/** `--untouched`: a seed range and the MNIST test digits (the evaluation takes the first 3,000) no choice was made on. */
const UNTOUCHED_SEEDS = 3_000_000;
const UNTOUCHED_DIGITS = 5_000;
/**
 * The share of each form of training digit each family's threshold may flag:
 * none. The learned score flags what they did and more, for less; they stay
 * for the inputs far outside anything it was fitted on, and to pick the reason.
 */
const FIT_DIGIT_FLAG_SHARE = 0;
/** The share of each form of training digit the model's margin alone may call undecided. */
const FIT_UNDECIDED_SHARE = 0.002;
/**
 * The learned score reads 784 pixels: it is fitted on this many times the
 * non-digits, and raw digits, it is evaluated on. Raw digits cost nothing to
 * render, and the rare odd ones set where its threshold must sit.
 */
const FIT_NON_DIGIT_FACTOR = 2;
const FIT_PIXEL_DIGIT_FACTOR = 5;
/** Rendered digits are fitted on in this many times the evaluation's number, so a full evaluation's worth of each form calibrates the threshold. */
const FIT_RENDERED_DIGIT_FACTOR = CALIBRATION_EVERY;
const FORMS: UploadForm[] = ['canvas', 'photo'];
/** The forms a digit arrives in: the non-digits' two, a 28×28 PNG (what MNIST's own digits look like as a file) and raw pixels. */
const DIGIT_FORMS: Judged['form'][] = [...FORMS, 'png', 'pixels'];
/** Ridge penalty of the fit, on features scaled to unit spread: enough to keep Newton's steps finite. */
const L2 = 1e-4;
/** The smallest spread a class profile keeps: a coarse corner no digit of a class inks would otherwise make any ink there infinitely unlike it. */
const MIN_SPREAD = 0.02;

/**
 * One input the verdict judges: where it came from, and what the model saw,
 * how many marks preprocessing counted and what the model answered (none: no ink).
 */
export interface Judged {
  /** 'digit' or the non-digit kind. */
  kind: string;
  /** A digit's true class; none for a non-digit. */
  label?: number;
  form: UploadForm | 'png' | 'pixels';
  seen?: { input: Float32Array; marks: number; probabilities: number[] };
}

type Seen = { input: Float32Array; marks: number };

async function preprocessed(upload: Buffer): Promise<Seen | undefined> {
  try {
    const { input, marks } = await preprocessImage(upload);
    return { input, marks };
  } catch (error) {
    if (error instanceof EmptyImageError) return undefined;
    throw error;
  }
}

/** Inputs → what the model saw and answered, 100 at a time. */
function answer(
  model: tfl.LayersModel,
  kind: string,
  form: Judged['form'],
  inputs: (Seen | undefined)[],
  labels?: ArrayLike<number>,
) {
  const present = inputs.filter((seen): seen is Seen => seen !== undefined).map((seen) => seen.input);
  const answers: number[][] = [];
  for (let start = 0; start < present.length; start += 100) {
    answers.push(...classify(model, present.slice(start, start + 100)).map((p) => p.probabilities));
  }
  let next = 0;
  return inputs.map((seen, i): Judged => {
    const judged: Judged = labels === undefined ? { kind, form } : { kind, form, label: labels[i]! };
    return seen === undefined ? judged : { ...judged, seen: { ...seen, probabilities: answers[next++]! } };
  });
}

/** 28×28 inputs sent as `{"pixels"}`: one mark, as the app counts them. */
const asPixels = (inputs: Float32Array[]): Seen[] => inputs.map((input) => ({ input, marks: 1 }));

/** A 28×28 digit saved as the greyscale PNG a caller would upload it as. */
const greyPng = async (digit: Uint8Array) => encodeGreyPng(digit, MNIST_SIDE, MNIST_SIDE);

/**
 * The first `count` digits of `split` as raw pixels, and the first `rendered`
 * as canvas drawings, paper photos and 28×28 PNGs.
 */
export async function judgedDigits(model: tfl.LayersModel, split: MnistSplit, count: number, rendered: number) {
  const digit = (i: number) => split.images.subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS);
  const raw = Array.from({ length: count }, (_, i) => Float32Array.from(digit(i), (v) => v / 255));
  const judged = answer(model, 'digit', 'pixels', asPixels(raw), split.labels);
  for (const [form, render] of [
    ['canvas', canvasDrawing],
    ['photo', paperPhoto],
    ['png', greyPng],
  ] as const) {
    const inputs = [];
    for (let i = 0; i < rendered; i++) inputs.push(await preprocessed(await render(digit(i), i + 1)));
    judged.push(...answer(model, 'digit', form, inputs, split.labels));
  }
  return judged;
}

/**
 * `perKind` non-digits of every kind as canvas drawings, paper photos and
 * 28×28 pixels, from seeds `firstSeed` on; two-digits draws from `split`.
 */
export async function judgedNonDigits(model: tfl.LayersModel, split: MnistSplit, firstSeed: number, perKind: number) {
  const judged: Judged[] = [];
  for (const [k, kind] of NON_DIGIT_NAMES.entries()) {
    const seeds = Array.from({ length: perKind }, (_, i) => firstSeed + k * 10_000 + i);
    for (const form of FORMS) {
      const inputs = [];
      for (const seed of seeds) inputs.push(await preprocessed(await nonDigit(kind, seed, form, split)));
      judged.push(...answer(model, kind, form, inputs));
    }
    judged.push(...answer(model, kind, 'pixels', asPixels(seeds.map((seed) => nonDigitPixels(kind, seed, split)))));
  }
  return judged;
}

/** The verdict's reason, or undefined for a digit. */
function flag(judged: Judged, weights: VerdictWeights): VerdictReason | undefined {
  if (judged.seen === undefined) return 'no_ink';
  const verdict = digitVerdict(judged.seen, weights);
  return verdict.isDigit ? undefined : verdict.reason;
}

/** Solves A x = b (n×n, symmetric positive definite) by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    for (let r = c + 1; r < n; r++) {
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let k = r + 1; k < n; k++) s -= m[r]![k]! * x[k]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

/**
 * The verdict's constants from a fitting set: the digits' class profiles,
 * then one score per family of non-digit against all the digits, and the
 * learned score against all the families at once. Kinds that count toward no
 * family (the look-alikes) are left out of the fit, and so, from the learned
 * score's, is what several marks flag before any score is read.
 */
export async function fitWeights(judged: Judged[], netOptions: Partial<NetOptions> = {}): Promise<VerdictWeights> {
  const rows = judged.filter((j) => j.seen !== undefined);
  const digits = rows.filter((j) => j.kind === 'digit');
  const profiles = classProfiles(digits);
  const features = (set: Judged[]) =>
    set.map((j) => verdictFeatures(j.seen!.input, argmax(j.seen!.probabilities), profiles));
  const digitFeatures = features(digits);
  const scores = Object.fromEntries(
    NON_DIGIT_FAMILIES.map((family) => {
      const members = rows.filter(
        (j) => j.kind !== 'digit' && NON_DIGIT_KINDS[j.kind as NonDigitKind].family === family,
      );
      return [
        family,
        fitScore(
          digitFeatures,
          features(members),
          digits.map((j) => j.form),
        ),
      ];
    }),
  ) as VerdictWeights['scores'];
  // The lowest margins of each form of training digit: the undecided rule may take FIT_UNDECIDED_SHARE of the form it
  // takes most of.
  const undecidedMargin = Math.min(
    ...DIGIT_FORMS.map((form) => {
      const margins = digits.flatMap((j) => (j.form === form ? [topTwoMargin(j.seen!.probabilities)] : []));
      return margins.sort((a, b) => a - b)[Math.floor(margins.length * FIT_UNDECIDED_SHARE)]!;
    }),
  );
  const counted = rows.filter(
    (j) => j.seen!.marks < 2 && (j.kind === 'digit' || NON_DIGIT_KINDS[j.kind as NonDigitKind].counted),
  );
  const countedFeatures = features(counted);
  const net = await fitNet(
    counted.map((j, i) => ({
      input: j.seen!.input,
      features: countedFeatures[i]!,
      nonDigit: j.kind !== 'digit',
      form: j.form,
    })),
    netOptions,
  );
  return { scores, undecidedMargin, profiles, net };
}

/**
 * L2-regularised logistic regression by Newton's method on features scaled
 * to unit spread, each class weighted to half the total so the many digits do
 * not drown the non-digits. Returns weights on the raw features, centred on
 * the mean digit, and a threshold that flags at most FIT_DIGIT_FLAG_SHARE of
 * each form of training digit.
 */
function fitScore(digits: number[][], nonDigits: number[][], forms: string[]): VerdictScore {
  const x = [...digits, ...nonDigits];
  const y = x.map((_, i) => (i < digits.length ? 0 : 1));
  const n = VERDICT_FEATURES.length;
  const centre = VERDICT_FEATURES.map((_, f) => digits.reduce((s, v) => s + v[f]!, 0) / digits.length);
  const scale = VERDICT_FEATURES.map((_, f) => {
    const variance = x.reduce((s, v) => s + (v[f]! - centre[f]!) ** 2, 0) / x.length;
    return Math.sqrt(variance) || 1;
  });
  const z = x.map((v) => [1, ...v.map((value, f) => (value - centre[f]!) / scale[f]!)]);
  const sampleWeight = y.map((v) => (v === 1 ? 0.5 / nonDigits.length : 0.5 / digits.length));
  let beta = new Array<number>(n + 1).fill(0);
  for (let iteration = 0; iteration < 50; iteration++) {
    const gradient = beta.map((b, k) => (k === 0 ? 0 : L2 * b));
    const hessian = beta.map((_, r) => beta.map((__, c) => (r === c && r > 0 ? L2 : 0)));
    z.forEach((row, i) => {
      const p = 1 / (1 + Math.exp(-row.reduce((s, v, k) => s + v * beta[k]!, 0)));
      const w = sampleWeight[i]!;
      for (let r = 0; r <= n; r++) {
        gradient[r]! += w * (p - y[i]!) * row[r]!;
        for (let c = 0; c <= n; c++) hessian[r]![c]! += w * p * (1 - p) * row[r]! * row[c]!;
      }
    });
    const step = solve(hessian, gradient);
    beta = beta.map((b, k) => b - step[k]!);
    if (Math.max(...step.map(Math.abs)) < 1e-8) break;
  }
  const weights = Object.fromEntries(
    VERDICT_FEATURES.map((name, f) => [name, { digit: centre[f]!, weight: beta[f + 1]! / scale[f]! }]),
  ) as VerdictScore['features'];
  // Each form of digit gets the threshold that flags FIT_DIGIT_FLAG_SHARE of it; the highest serves all.
  const logits = new Map<string, number[]>();
  digits.forEach((v, i) => {
    const logit = familyLogit({ bias: beta[0]!, threshold: 0, features: weights }, v);
    logits.set(forms[i]!, [...(logits.get(forms[i]!) ?? []), logit]);
  });
  const threshold = Math.max(
    ...[...logits.values()].map((list) => list.sort((a, b) => b - a)[Math.floor(list.length * FIT_DIGIT_FLAG_SHARE)]!),
  );
  return { bias: beta[0]!, threshold, features: weights };
}

/**
 * Per digit class, the mean and spread of each ink feature over `digits`,
 * grouped by their true label: grouped by the model's answer, the profiles
 * would hold the fitting model's mistakes, not the digits' shapes.
 */
function classProfiles(digits: Judged[]): ClassProfiles {
  const byClass = Array.from({ length: MNIST_CLASSES }, (): Judged[] => []);
  for (const j of digits) byClass[j.label!]!.push(j);
  return byClass.map((members) => {
    const ink = meanAndSpread(members.map((j) => inkFeatures(j.seen!.input)));
    const coarse = meanAndSpread(members.map((j) => coarseImage(j.seen!.input)));
    // Rounded as constantsText prints them: the learned score is fitted on the features verdict.ts will compute.
    const printed = (values: number[], digits: number) => values.map((v) => round(v, digits));
    return {
      mean: printed(ink.mean, 3),
      spread: printed(ink.spread, 3),
      coarseMean: printed(coarse.mean, 2),
      coarseSpread: printed(coarse.spread, 2),
    };
  });
}

/** Per column of `rows`, the mean and the standard deviation; a spread never under MIN_SPREAD, so no term is infinite. */
function meanAndSpread(rows: number[][]): { mean: number[]; spread: number[] } {
  const mean = rows[0]!.map((_, f) => rows.reduce((s, r) => s + r[f]!, 0) / rows.length);
  const spread = mean.map((m, f) =>
    Math.max(MIN_SPREAD, Math.sqrt(rows.reduce((s, r) => s + (r[f]! - m) ** 2, 0) / rows.length)),
  );
  return { mean, spread };
}

const round = (value: number, digits: number) => Number(value.toPrecision(digits));

const numbers = (values: number[], digits: number) => `[${values.map((v) => round(v, digits)).join(', ')}]`;

/** The weights as the TypeScript constant verdict.ts holds. */
function constantsText(weights: VerdictWeights): string {
  const score = (family: NonDigitFamily) => {
    const { bias, threshold, features } = weights.scores[family];
    return [
      `    ${family}: {`,
      `      bias: ${round(bias, 4)},`,
      `      threshold: ${round(threshold, 4)},`,
      '      features: {',
      ...VERDICT_FEATURES.map((name) => {
        const { digit, weight } = features[name];
        return `        ${name}: { digit: ${round(digit, 4)}, weight: ${round(weight, 4)} },`;
      }),
      '      },',
      '    },',
    ];
  };
  return [
    'export const VERDICT_WEIGHTS: VerdictWeights = {',
    '  net: decodeNet(VERDICT_NET),',
    '  scores: {',
    ...NON_DIGIT_FAMILIES.flatMap(score),
    '  },',
    `  undecidedMargin: ${round(weights.undecidedMargin, 4)},`,
    '  // Per digit 0–9: mean and spread of the ink features (INK_FEATURES order), then of the 7×7 coarse image.',
    '  profiles: [',
    ...weights.profiles.flatMap(({ mean, spread, coarseMean, coarseSpread }) => [
      '    {',
      `      mean: ${numbers(mean, 3)},`,
      `      spread: ${numbers(spread, 3)},`,
      `      coarseMean: ${numbers(coarseMean, 2)},`,
      `      coarseSpread: ${numbers(coarseSpread, 2)},`,
      '    },',
    ]),
    '  ],',
    '};',
  ].join('\n');
}

/** Rows of the report: per kind and form, the share flagged and the reasons given. */
export function flagShares(judged: Judged[], weights: VerdictWeights = VERDICT_WEIGHTS) {
  const groups = new Map<string, { kind: string; form: string; count: number; reasons: Record<string, number> }>();
  for (const j of judged) {
    const key = `${j.kind} ${j.form}`;
    const group = groups.get(key) ?? { kind: j.kind, form: j.form, count: 0, reasons: {} };
    const reason = flag(j, weights);
    group.count++;
    if (reason !== undefined) group.reasons[reason] = (group.reasons[reason] ?? 0) + 1;
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => {
    const flagged = Object.values(g.reasons).reduce((s, v) => s + v, 0);
    return { ...g, flagged, share: flagged / g.count };
  });
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;

function printTable(rows: ReturnType<typeof flagShares>): void {
  const out = [`| kind | form | n | flagged | ${VERDICT_REASONS.join(' | ')} |`, '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const reasons = VERDICT_REASONS.map((reason) => percent((r.reasons[reason] ?? 0) / r.count));
    out.push(`| ${r.kind} | ${r.form} | ${r.count} | ${percent(r.share)} | ${reasons.join(' | ')} |`);
  }
  const total = (label: string, keep: (kind: (typeof NON_DIGIT_KINDS)[NonDigitKind] | undefined) => boolean) => {
    const kept = rows.filter((r) => keep(r.kind === 'digit' ? undefined : NON_DIGIT_KINDS[r.kind as NonDigitKind]));
    const count = kept.reduce((s, r) => s + r.count, 0);
    out.push(`| ${label} | | ${count} | ${percent(kept.reduce((s, r) => s + r.flagged, 0) / count)} |`);
  };
  out.push('', '| total | | n | flagged |', '|---|---|---|---|');
  total('non-digits (counted kinds)', (kind) => kind?.counted === true);
  for (const family of NON_DIGIT_FAMILIES) total(`  ${family}`, (kind) => kind?.family === family);
  total('look-alikes (not counted)', (kind) => kind !== undefined && !kind.counted);
  total('real digits', (kind) => kind === undefined);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** A saved model (model.json and weights.bin, as training writes them, metrics.json beside them if there). */
async function savedModel(dir: string): Promise<{ model: tfl.LayersModel; label: string }> {
  const json = JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
  const weights = await readFile(path.join(dir, 'weights.bin'));
  const model = await tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
    }),
  );
  const metrics = await readFile(path.join(dir, 'metrics.json'), 'utf8').then(
    (text) => JSON.parse(text) as { version: string; arch: string; test: { accuracy: number } },
    () => undefined,
  );
  const about =
    metrics === undefined ? 'no metrics.json' : `${metrics.arch} ${metrics.version}, ${metrics.test.accuracy}`;
  return { model, label: `${dir}: ${about}` };
}

/**
 * The tests' MLP, a saved model from `dir`, or with `cnn` a CNN trained here
 * for one epoch with the project's defaults: how the verdict holds for a
 * model other than the one it was fitted with.
 */
async function benchModel(arch: string, dir: string | undefined, mnist: Mnist) {
  if (dir !== undefined) return savedModel(dir);
  if (arch === 'mlp') {
    const { model, metrics } = await cachedModel(async () => mnist);
    return {
      model,
      label: `mlp, 2 epochs, seed 42: the tests' (test/support/test-model.ts), ${metrics.test.accuracy}`,
    };
  }
  if (arch !== 'cnn') throw new Error(`--model must be mlp or cnn; got "${arch}"`);
  const model = createModel({ arch });
  await trainModel(model, mnist.train, { epochs: 1, ...TRAINING_DEFAULTS.cnn });
  const { accuracy } = await evaluateModel(model, mnist.test, 0);
  return { model, label: `cnn, 1 epoch, trained by this run, ${accuracy}` };
}

export async function benchVerdict(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      fit: { type: 'boolean', default: false },
      model: { type: 'string', default: 'mlp' },
      'model-dir': { type: 'string' },
      'per-kind': { type: 'string', default: '100' },
      digits: { type: 'string', default: '1000' },
      untouched: { type: 'boolean', default: false },
    },
  });
  const perKind = Number(values['per-kind']);
  const count = Number(values.digits);
  const mnist = await loadMnist({ dir: benchMnistDir() });
  await initBackend();
  const { model, label } = await benchModel(values.model!, values['model-dir'], mnist);
  const emit = { bench: 'verdict', machine: machine(), model: `${label} MNIST test accuracy`, perKind, digits: count };
  process.stdout.write(`${JSON.stringify(emit)}\n`);
  let weights = VERDICT_WEIGHTS;
  if (values.fit) {
    const fitSet = [
      ...(await judgedDigits(
        model,
        mnist.train,
        count * 3 * FIT_PIXEL_DIGIT_FACTOR,
        count * FIT_RENDERED_DIGIT_FACTOR,
      )),
      ...(await judgedNonDigits(model, mnist.train, FIT_SEEDS, perKind * FIT_NON_DIGIT_FACTOR)),
    ];
    weights = await fitWeights(fitSet);
    await writeNet(weights.net, `npm run bench -- verdict ${argv.join(' ')}`);
    process.stdout.write(
      `\nFitted on ${fitSet.length} inputs; wrote functions/lib/verdict-weights.ts; paste into functions/lib/verdict.ts:\n\n${constantsText(weights)}\n\nOn the fitted set:\n`,
    );
    printTable(flagShares(fitSet, weights));
  }
  const from = values.untouched ? UNTOUCHED_DIGITS : 0;
  const digits: MnistSplit = {
    images: mnist.test.images.subarray(from * MNIST_PIXELS),
    labels: mnist.test.labels.subarray(from),
    count: mnist.test.count - from,
  };
  if (count * 3 > digits.count) throw new Error(`--digits ${count}: at most ${Math.floor(digits.count / 3)} here`);
  const evalSet = [
    ...(await judgedDigits(model, digits, count * 3, count)),
    ...(await judgedNonDigits(model, mnist.test, values.untouched ? UNTOUCHED_SEEDS : EVAL_SEEDS, perKind)),
  ];
  process.stdout.write(
    `\nEvaluated on MNIST test digits from ${from} and non-digits of seeds the fit never saw${values.untouched ? ', neither of them seen by any design choice' : ''}:\n`,
  );
  printTable(flagShares(evalSet, weights));
}
