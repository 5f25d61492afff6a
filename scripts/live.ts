/**
 * `npm run live`: live accuracy per model version, from captured predictions
 * joined with users' feedback, and input drift (functions/lib/live/). Reads the bucket
 * directly, as `npm run models` does, so it works while `npm start` runs;
 * locally it also stores each version's summary as live.json, which is how
 * GET /model and the report get it without the cloud's schedule.
 */
import { parseArgs } from 'node:util';
import { readConfig } from '#lib/config';
import { LIVE_FILE } from '#lib/live/records';
import { COMPARISON_CAVEAT, type PairComparison } from '#lib/live/comparison';
import { computeLiveSummaries, storeLiveSummaries } from '#lib/live/stored';
import { type Drift, psiLevel } from '#lib/live/drift';
import { CONFIDENCE_BINS, FEATURES } from '#lib/live/profile';
import { LIVE_CAVEAT, type LiveSummary, type VersionLive } from '#lib/live/summary';
import { openStorage } from '#lib/storage/storage';
import { ModelStore } from '#lib/storage/store';
import { stackOutput } from './cli/outputs.ts';
import { CliError, runCli, USAGE_EXIT } from './cli/run.ts';

const USAGE = `Usage: npm run live -- [--deployed] [--json] [--since YYYY-MM-DD] [--no-write]

Joins captured predictions with users' feedback, per model version: answers
captured, feedback, confirmed, corrected, the accuracy users report with its
95% Wilson interval, the corrections' confusion pairs, the confidence
histogram, and the mix of answers against the training set's. Versions that
ran side by side (a shadow or canary candidate beside the serving one) are
compared on the same inputs: how often they agree, and the accuracy of each on
the inputs users labelled.

Input drift: the captures of the last DRIFT_WINDOW_DAYS (7) against the
reference profile the version's training stored, per feature as a population
stability index (PSI): under 0.1 no change, 0.1 to 0.25 moderate, over 0.25
significant. The score is the largest; over DRIFT_THRESHOLD (0.25) it is an
alarm. Fewer than DRIFT_MIN_SAMPLES (200) captures are not enough data.

${LIVE_CAVEAT}

Locally it also stores each version's summary as models/<version>/${LIVE_FILE},
which GET /model and \`npm run report\` show.

  --deployed          read the deployed bucket (cdk.outputs.json); never stores
  --json              print one JSON object: {"versions": [...], "skipped": {...}, "comparisons": [...]}
  --since YYYY-MM-DD  only captures and feedback from that day (UTC) on; not stored
  --no-write          print only; store nothing
  -h, --help          this text

Storage: BUCKET (+ S3_ENDPOINT), else the embedded S3 under .data/.`;

/** Confusion pairs listed per version, most frequent first. */
const TOP_PAIRS = 5;
const BAR_WIDTH = 24;

const percent = (x: number | null, digits = 1) => (x === null ? '–' : `${(x * 100).toFixed(digits)}%`);
const count = (n: number) => n.toLocaleString('en-US');
const minute = (iso: string) => iso.slice(0, 16).replace('T', ' ');
const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`;
const bar = (n: number, max: number, width: number) =>
  n === 0 ? '' : '█'.repeat(Math.max(1, Math.round((n / max) * width)));

function confusionPairs(confusion: number[][]): string {
  const pairs = confusion
    .flatMap((row, label) => row.map((n, answer) => ({ label, answer, n })))
    .filter((p) => p.n > 0)
    .sort((a, b) => b.n - a.n || a.label - b.label || a.answer - b.answer);
  if (pairs.length === 0) return 'none';
  const shown = pairs.slice(0, TOP_PAIRS).map((p) => `${p.label} answered as ${p.answer} ×${p.n}`);
  const more = pairs.length > TOP_PAIRS ? ` · and ${pairs.length - TOP_PAIRS} more pairs` : '';
  return `${shown.join(' · ')}${more}`;
}

function histogram({ all, corrected }: VersionLive['confidence']): string[] {
  const maxAll = Math.max(...all);
  const maxCorrected = Math.max(...corrected);
  return all.map((n, i) => {
    const range = `${(i / CONFIDENCE_BINS).toFixed(1)}–${((i + 1) / CONFIDENCE_BINS).toFixed(1)}`;
    const wrong = corrected[i]!;
    const right = wrong === 0 ? '' : `   corrected ${bar(wrong, maxCorrected, BAR_WIDTH / 2)} ${wrong}`;
    return `    ${range}  ${bar(n, maxAll, BAR_WIDTH).padEnd(BAR_WIDTH)} ${String(n).padStart(6)}${right}`;
  });
}

function classMix({ answers, training }: VersionLive['classMix']): string[] {
  const row = (name: string, shares: number[]) =>
    `    ${name.padEnd(9)}${shares.map((s) => percent(s).padStart(7)).join('')}`;
  return [
    `    ${'digit'.padEnd(9)}${answers.map((_, d) => String(d).padStart(7)).join('')}`,
    row('answers', answers),
    row('training', training),
  ];
}

const psiText = (x: number) => x.toFixed(3);

function driftLines(drift: Drift | undefined, minSamples: number): string[] {
  if (!drift) return [];
  const window = `${count(drift.samples)} captures since ${minute(drift.since)} UTC`;
  if (drift.level === 'no reference profile') return [`  drift        no reference profile: ${drift.reference}`];
  if (drift.level === 'not enough data')
    return [`  drift        not enough data: ${window}, ${count(minSamples)} needed`];
  const alarm = drift.alarm ? `ALARM: over ${drift.threshold}` : `alarm over ${drift.threshold}`;
  return [
    `  drift        ${drift.level}: score ${psiText(drift.score!)} (${alarm}), ${window}`,
    "    PSI per feature against the version's reference profile",
    ...FEATURES.map((f) => {
      const value = drift.features![f];
      const level = psiLevel(value);
      return `    ${f.padEnd(14)}${psiText(value).padStart(7)}${level === 'none' ? '' : `  ${level}`}`;
    }),
  ];
}

function versionTable(v: VersionLive, serving: boolean, minSamples: number): string {
  const accuracy =
    v.accuracy === null
      ? '–  (no feedback yet)'
      : `${percent(v.accuracy)}  95% interval ${percent(v.low)} to ${percent(v.high)} (from ${count(v.feedback)} answers)`;
  return [
    `${v.version}${serving ? '  (serving)' : ''}`,
    `  predictions  ${count(v.predictions)}, ${minute(v.from)} to ${minute(v.to)} UTC`,
    `  feedback     ${count(v.feedback)} (${percent(v.feedback / v.predictions)} of predictions)`,
    `  confirmed    ${count(v.correct)}`,
    `  corrected    ${count(v.corrected)}`,
    `  accuracy     ${accuracy}`,
    `  corrections  ${confusionPairs(v.confusion)}`,
    `  latency      p50 ${ms(v.latencyMs.p50)} · p99 ${ms(v.latencyMs.p99)} (arrival to answer, in the server)`,
    `  low conf.    ${percent(v.lowConfidence.share)} of answers below ${v.lowConfidence.threshold}`,
    '  confidence   (every answer; the corrected ones beside)',
    ...histogram(v.confidence),
    '  class mix    share of each digit among the answers, and in MNIST training',
    ...classMix(v.classMix),
    ...driftLines(v.drift, minSamples),
  ].join('\n');
}

function comparisonTable(c: PairComparison, serving: string | undefined): string {
  const width = Math.max(...c.versions.map((v) => v.length));
  const name = (v: string) => `${v}${v === serving ? ' (serving)' : ''}`;
  const score = (s: PairComparison['scores'][number]) =>
    `    ${s.version.padEnd(width)}  ${
      s.accuracy === null
        ? '–'
        : `${percent(s.accuracy)}  95% interval ${percent(s.low)} to ${percent(s.high)} (${count(s.correct)} of ${count(c.feedback)})`
    }`;
  return [
    `${name(c.versions[0])}  vs  ${name(c.versions[1])}`,
    `  compared     ${count(c.compared)} inputs answered by both; agreed on ${count(c.agreed)} (${percent(c.agreement)})`,
    `  answered     ${c.scores.map((s) => `${s.version} ${count(s.answered)}`).join(' · ')}`,
    `  feedback     ${count(c.feedback)} of them labelled by users; each version's accuracy on those:`,
    ...c.scores.map(score),
  ].join('\n');
}

function comparisons(list: PairComparison[], serving: string | undefined): string | undefined {
  if (list.length === 0) return undefined;
  const header = `Side by side: versions that answered the same inputs (a shadow or canary beside the serving one).\n${COMPARISON_CAVEAT}`;
  return [header, ...list.map((c) => comparisonTable(c, serving))].join('\n\n');
}

function skippedLine(skipped: LiveSummary['skipped']): string | undefined {
  const parts = [
    [skipped.captureLines, 'capture lines that were not valid records'],
    [skipped.captureObjects, 'capture objects that could not be read'],
    [skipped.feedbackObjects, 'feedback objects that were not valid records'],
    [skipped.unknownPredictionIds, 'feedback for predictions never captured'],
    [skipped.unknownVersionCaptures, 'captures of versions the bucket does not hold'],
  ] as const;
  const shown = parts.filter(([n]) => n > 0).map(([n, what]) => `${count(n)} ${what}`);
  return shown.length > 0 ? `Left out: ${shown.join('; ')}.` : undefined;
}

function report(
  summary: LiveSummary & { comparisons: PairComparison[] },
  serving: string | undefined,
  minSamples: number,
): string {
  const header = `Live accuracy: what users said of the answers they were given.\n${LIVE_CAVEAT}`;
  const body =
    summary.versions.length === 0
      ? 'No captured predictions yet: answers from POST /predict are recorded (CAPTURE_MODE) and users rate them on the page or with POST /feedback.'
      : summary.versions.map((v) => versionTable(v, v.version === serving, minSamples)).join('\n\n');
  return [header, body, comparisons(summary.comparisons, serving), skippedLine(summary.skipped)]
    .filter(Boolean)
    .join('\n\n');
}

/** A real calendar day as YYYY-MM-DD: partitions are named so, and "2026-02-30" would silently read nothing. */
function parseSince(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const valid = /^\d{4}-\d{2}-\d{2}$/.test(text) && new Date(`${text}T00:00:00Z`).toISOString().startsWith(text);
  if (!valid) throw new CliError(`--since must be a day like 2026-12-01; got "${text}"\n\n${USAGE}`, USAGE_EXIT);
  return text;
}

function parseLiveArgs() {
  try {
    return parseArgs({
      options: {
        deployed: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        since: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${USAGE}`, USAGE_EXIT);
  }
}

async function main(): Promise<void> {
  const values = parseLiveArgs();
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const since = parseSince(values.since);
  const config = readConfig();
  const storage = await openStorage(
    values.deployed ? { ...config, bucket: await stackOutput('BucketName'), s3Endpoint: undefined } : config,
  );
  try {
    const store = new ModelStore(storage.objects);
    const [summary, serving] = await Promise.all([
      computeLiveSummaries(storage.objects, {
        since,
        drift: config.drift,
        lowConfidenceThreshold: config.metrics.lowConfidenceThreshold,
      }),
      // A malformed pointer costs only the "(serving)" mark here; `npm run models` reports it.
      store.latest().then(
        (pointer) => pointer?.version,
        () => undefined,
      ),
    ]);
    // A summary of part of the traffic (--since) is not what GET /model should show as the version's.
    const write = !values.deployed && !values['no-write'] && since === undefined;
    if (write) await storeLiveSummaries(storage.objects, summary, new Date());
    if (values.json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      return;
    }
    const stored = !write
      ? `Not stored (${values.deployed ? '--deployed' : since ? '--since' : '--no-write'}).`
      : summary.versions.length > 0
        ? `Stored models/<version>/${LIVE_FILE} for ${summary.versions.length} ${summary.versions.length === 1 ? 'version' : 'versions'} in ${storage.bucket}.`
        : undefined;
    process.stdout.write(
      `${[report(summary, serving, config.drift.minSamples), stored].filter(Boolean).join('\n\n')}\n`,
    );
  } finally {
    await storage.close();
  }
}

runCli(main, 'live: ');
