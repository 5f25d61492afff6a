/**
 * The evaluation report of a model version: one HTML document stored beside
 * the version as report.html. It must stay readable wherever it is opened —
 * from the bucket, a mail attachment, a laptop with no network — so it holds
 * everything inline (CSS, SVG charts, the digits as PNG data URLs), runs no
 * script, and its Content-Security-Policy blocks any request it might make.
 */
import { encodeGreyPng } from './image/png-encode.ts';
import { MNIST_PIXELS, MNIST_SIDE } from './mnist-shape.ts';
import type { EpochResult } from './training/train-loop.ts';
import type { ModelMetrics } from './storage/store.ts';
import type { StoredLive } from './live/stored.ts';
import { LIVE_CAVEAT } from './live/summary.ts';

/** Markup that is already safe; everything else interpolated into `html` is escaped. */
class Html {
  constructor(readonly text: string) {}
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function fragment(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(fragment).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** Escaping by default means a forgotten call cannot inject markup from a version name or a metrics file. */
function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  return new Html(strings.reduce((out, part, i) => out + fragment(values[i - 1]) + part));
}

const percent = (x: number, digits = 2): string => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '–');
const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const count = (n: number): string => (Number.isFinite(n) ? n.toLocaleString('en-US') : '–');

function utc(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 90) return `${seconds.toFixed(1)} s`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** A stored metrics.json may carry null (JSON's NaN) or omit a value entirely. */
const finite = (x: number | null | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

// ---------------------------------------------------------------- charts

interface Series {
  name: string;
  /** CSS class giving the stroke colour, so the dark scheme can recolour it. */
  tone: 'train' | 'val';
  values: (number | null | undefined)[];
}

interface ChartOptions {
  title: string;
  yLabel: string;
  epochs: number[];
  series: Series[];
  formatTick: (value: number, step: number) => string;
  formatValue: (value: number) => string;
  /** Values the quantity cannot leave (accuracy ≤ 100%), so padding never puts ticks there. */
  limits: { min: number; max: number };
}

const WIDTH = 520;
const HEIGHT = 270;
const MARGIN = { left: 58, right: 18, top: 36, bottom: 42 };

function niceStep(span: number, ticks: number): number {
  const raw = span / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const normal = raw / magnitude;
  return (normal < 1.5 ? 1 : normal < 3 ? 2 : normal < 7 ? 5 : 10) * magnitude;
}

/** Decimals that show a step's significant digit and no float noise. */
const decimalsFor = (step: number): number => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));

function lineChart(options: ChartOptions): Html {
  const { epochs, formatTick, formatValue } = options;
  const series = options.series.filter((s) => s.values.some(finite));
  const values = series.flatMap((s) => s.values.filter(finite));
  if (epochs.length === 0 || values.length === 0) {
    return html`<p class="empty">No per-epoch ${options.yLabel} was recorded for this run.</p>`;
  }

  let low = Math.min(...values);
  let high = Math.max(...values);
  // A single epoch, or a flat curve, still needs a vertical span to draw in.
  if (high - low < 1e-9) {
    const pad = Math.abs(high) * 0.05 || 0.01;
    low -= pad;
    high += pad;
  }
  const yStep = niceStep(high - low, 5);
  const yMin = Math.max(options.limits.min, Math.floor(low / yStep - 1e-9) * yStep);
  const yMax = Math.min(options.limits.max, Math.ceil(high / yStep + 1e-9) * yStep);

  const first = epochs[0]!;
  const last = epochs[epochs.length - 1]!;
  // One epoch sits in the middle of the plot rather than on its left edge.
  const xMin = first === last ? first - 1 : first;
  const xMax = first === last ? last + 1 : last;
  const xStep = Math.max(1, Math.ceil(niceStep(Math.max(1, last - first), 8)));

  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (epoch: number) => MARGIN.left + ((epoch - xMin) / (xMax - xMin)) * plotW;
  const y = (value: number) => MARGIN.top + (1 - (value - yMin) / (yMax - yMin)) * plotH;
  const r = (n: number) => n.toFixed(1);

  const yTicks: Html[] = [];
  for (let i = 0; yMin + i * yStep <= yMax + yStep * 1e-6; i++) {
    const value = yMin + i * yStep;
    yTicks.push(html`<line class="grid" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${r(y(value))}" y2="${r(y(value))}"/>
<text class="tick" x="${MARGIN.left - 8}" y="${r(y(value))}" text-anchor="end" dominant-baseline="middle">${formatTick(value, yStep)}</text>`);
  }
  const xTicks: Html[] = [];
  for (let epoch = first; epoch <= last; epoch += xStep) {
    xTicks.push(html`<line class="axis" x1="${r(x(epoch))}" x2="${r(x(epoch))}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom + 5}"/>
<text class="tick" x="${r(x(epoch))}" y="${HEIGHT - MARGIN.bottom + 18}" text-anchor="middle">${epoch}</text>`);
  }

  const lines = series.map((s) => {
    // A missing value breaks the line instead of bridging it, so a gap reads as a gap.
    let d = '';
    let pen = false;
    s.values.forEach((value, i) => {
      if (!finite(value)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${r(x(epochs[i]!))} ${r(y(value))}`;
      pen = true;
    });
    const dots = s.values.map((value, i) =>
      finite(value)
        ? html`<circle class="dot ${s.tone}" cx="${r(x(epochs[i]!))}" cy="${r(y(value))}" r="3"><title>${s.name}, epoch ${epochs[i]}: ${formatValue(value)}</title></circle>`
        : '',
    );
    return html`<path class="series ${s.tone}" d="${d}"/>${dots}`;
  });

  // SVG text cannot be measured without a browser; ~6.5 units a character at font-size 12 leaves room for the widest names.
  let legendX = MARGIN.left + 6;
  const legend = series.map((s) => {
    const swatch = html`<line class="swatch ${s.tone}" x1="0" x2="22" y1="0" y2="0"/>`;
    const name = html`<text class="legend" x="28" y="0" dominant-baseline="middle">${s.name}</text>`;
    const item = html`<g transform="translate(${legendX} 14)">${swatch}${name}</g>`;
    legendX += 28 + s.name.length * 6.5 + 18;
    return item;
  });
  const absent = options.series.filter((s) => !s.values.some(finite)).map((s) => s.name);
  const gaps = series
    .map((s) => ({ name: s.name, epochs: epochs.filter((_, i) => !finite(s.values[i])) }))
    .filter((g) => g.epochs.length > 0);

  return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${options.title} per epoch">
<title>${options.title} per epoch</title>
${yTicks}
<line class="axis" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}"/>
<line class="axis" x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}"/>
${xTicks}
<text class="label" x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 6}" text-anchor="middle">epoch</text>
<text class="label" transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${options.yLabel}</text>
${lines}
${legend}
</svg>
${absent.length > 0 ? html`<p class="note">No ${absent.join(' or ')} was recorded for this run.</p>` : ''}
${gaps.map((g) => html`<p class="note">No ${g.name} for ${g.epochs.length === 1 ? 'epoch' : 'epochs'} ${g.epochs.join(', ')}; the line is broken there.</p>`)}`;
}

function trainingCharts(history: EpochResult[]): Html {
  const epochs = history.map((e) => e.epoch);
  const loss = lineChart({
    title: 'Loss',
    yLabel: 'cross-entropy loss',
    epochs,
    series: [
      { name: 'training loss', tone: 'train', values: history.map((e) => e.loss) },
      { name: 'validation loss', tone: 'val', values: history.map((e) => e.valLoss) },
    ],
    formatTick: (v, step) => v.toFixed(decimalsFor(step)),
    formatValue: (v) => v.toFixed(4),
    limits: { min: 0, max: Infinity },
  });
  const accuracy = lineChart({
    title: 'Accuracy',
    yLabel: 'accuracy',
    epochs,
    series: [
      { name: 'training accuracy', tone: 'train', values: history.map((e) => e.accuracy) },
      { name: 'validation accuracy', tone: 'val', values: history.map((e) => e.valAccuracy) },
    ],
    formatTick: (v, step) => percent(v, decimalsFor(step * 100)),
    formatValue: (v) => percent(v),
    limits: { min: 0, max: 1 },
  });
  return html`<section class="card"><h2>Loss per epoch</h2>${loss}</section>
<section class="card"><h2>Accuracy per epoch</h2>${accuracy}</section>`;
}

// ---------------------------------------------------------------- tables

const TEST_CONFUSION_CAPTION =
  "Rows: the true digit; columns: the model's answer. Blue: read correctly; red: mistakes (square-root scale, so small counts still show).";

function confusionTable(confusion: number[][], id = 'confusion', caption = TEST_CONFUSION_CAPTION): Html {
  const digits = confusion.map((_, i) => i);
  const rows = confusion.map((counts, truth) => {
    const total = counts.reduce((a, b) => a + b, 0) || 1;
    const cells = counts.map((n, predicted) => {
      const share = n / total;
      // Mistakes are a few percent of a row at most; a square-root scale keeps them visible beside the diagonal (as on the web page).
      const strength = truth === predicted ? 0.12 + 0.88 * share : Math.min(0.85, Math.sqrt(share) * 2.5);
      const colour = truth === predicted ? '79 70 229' : '220 38 38';
      const classes = [n === 0 ? 'zero' : '', n > 0 && strength > 0.55 ? 'dark' : '', truth === predicted ? 'hit' : '']
        .filter(Boolean)
        .join(' ');
      const title =
        truth === predicted
          ? `${count(n)} of ${count(total)} ${truth}s read correctly (${percent(share)})`
          : `${count(n)} of ${count(total)} ${truth}s read as ${predicted} (${percent(share)})`;
      return html`<td${classes ? html` class="${classes}"` : ''}${n > 0 ? html` style="background: rgb(${colour} / ${strength.toFixed(3)})"` : ''} title="${title}">${n}</td>`;
    });
    return html`<tr><th scope="row">${truth}</th>${cells}</tr>`;
  });
  return html`<div class="scroll"><table id="${id}">
<caption>${caption}</caption>
<thead><tr><th></th><th class="axis" colspan="${digits.length}" scope="colgroup">predicted →</th></tr>
<tr><th class="axis" scope="col">true ↓</th>${digits.map((d) => html`<th scope="col">${d}</th>`)}</tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

/** A class is flagged when it is clearly worse than the model as a whole, whatever that model's level. */
const WEAK_MARGIN = 0.01;

function perClassTable(metrics: ModelMetrics): Html {
  const { perClass, confusion, accuracy } = metrics.test;
  const weakBelow = accuracy - WEAK_MARGIN;
  const score = (value: number, text: string) => html`<td${value < weakBelow ? html` class="weak"` : ''}>${text}</td>`;
  const rows = perClass.map((c) => {
    const row = confusion[c.digit] ?? [];
    let confused = -1;
    row.forEach((n, predicted) => {
      if (predicted !== c.digit && n > 0 && (confused < 0 || n > row[confused]!)) confused = predicted;
    });
    return html`<tr><th scope="row">${c.digit}</th>${score(c.precision, percent(c.precision))}${score(c.recall, percent(c.recall))}${score(c.f1, fixed(c.f1, 3))}
<td>${count(c.support)}</td><td class="confused">${confused < 0 ? '–' : `${confused} (${count(row[confused]!)})`}</td></tr>`;
  });
  return html`<div class="scroll"><table id="per-class">
<caption>Highlighted: more than ${WEAK_MARGIN * 100} percentage point below the overall test accuracy (${percent(accuracy)}).
Confused with: the digit it is most often mistaken for, and how often.</caption>
<thead><tr><th scope="col">Digit</th><th scope="col">Precision</th><th scope="col">Recall</th><th scope="col">F1</th>
<th scope="col">Images</th><th scope="col">Confused with</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`;
}

// ---------------------------------------------------------------- digits

/** The 28×28 test image as a PNG data URL, exactly the pixels the model saw (white ink on black). */
function digitPng(testImages: Uint8Array, index: number): string {
  const pixels = testImages.subarray(index * MNIST_PIXELS, (index + 1) * MNIST_PIXELS);
  return `data:image/png;base64,${encodeGreyPng(pixels, MNIST_SIDE, MNIST_SIDE).toString('base64')}`;
}

function worstGrid(metrics: ModelMetrics, testImages: Uint8Array): Html {
  const { worst } = metrics.test;
  if (worst.length === 0)
    return html`<p class="empty">No misclassified test images were recorded for this version.</p>`;
  const figures = worst.map((w) => {
    const src = digitPng(testImages, w.index);
    const what = `true ${w.label} → predicted ${w.predicted} (${percent(w.confidence, 1)})`;
    const pair = html`<span class="pair">true ${w.label} → <span class="guess">predicted ${w.predicted}</span></span>`;
    return html`<figure><img src="${src}" width="${MNIST_SIDE}" height="${MNIST_SIDE}" alt="Test image ${w.index}: ${what}">
<figcaption>${pair} <span class="conf">(${percent(w.confidence, 1)})</span> <span class="index">· #${w.index}</span></figcaption></figure>`;
  });
  return html`<div class="digits">${figures}</div>`;
}

// ---------------------------------------------------------------- live traffic

const liveInterval = (live: StoredLive) =>
  html`<span>users’ accuracy, 95% interval ${percent(live.low ?? Number.NaN, 1)} to ${percent(live.high ?? Number.NaN, 1)}</span>`;
const liveCount = (live: StoredLive) =>
  html`<span>from ${count(live.feedback)} ${live.feedback === 1 ? 'answer' : 'answers'} with feedback</span>`;

/** What users said of this version's answers (its live.json), when the caller has it. */
function liveSection(live: StoredLive): Html {
  const headline =
    live.accuracy === null
      ? html`<div class="headline"><strong>–</strong><span>no feedback yet</span></div>`
      : html`<div class="headline"><strong>${percent(live.accuracy, 1)}</strong>${liveInterval(live)}${liveCount(live)}</div>`;
  return html`<section class="card wide" id="live"><h2>Live traffic</h2>
<div class="summary">${headline}
<dl>
<dt>Predictions</dt><dd>${count(live.predictions)} captured, ${utc(live.from)} to ${utc(live.to)}</dd>
<dt>Feedback</dt><dd>${count(live.feedback)}: ${count(live.correct)} confirmed, ${count(live.corrected)} corrected</dd>
<dt>Summarised</dt><dd>${utc(live.updatedAt)}</dd>
</dl>
</div>
<p class="note">${LIVE_CAVEAT}</p>
${
  live.corrected === 0
    ? html`<p class="empty">No answer has been corrected.</p>`
    : confusionTable(
        live.confusion,
        'live-confusion',
        'Corrected answers only. Rows: the digit the user says it was; columns: the model’s answer.',
      )
}
</section>`;
}

// ---------------------------------------------------------------- page

const STYLE = `
  :root {
    --bg: #f4f5f8; --card: #ffffff; --text: #1c1f26; --muted: #5d6472; --line: #e2e5eb;
    --accent: #4f46e5; --val: #d97706; --bar: #cfd3dc; --bad: #b42318;
    --shadow: 0 1px 2px rgb(16 24 40 / 6%), 0 1px 3px rgb(16 24 40 / 8%); --radius: 12px;
    font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
    color: var(--text); background: var(--bg);
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #111318; --card: #1a1d24; --text: #e8eaf0; --muted: #a1a8b6; --line: #2c313b;
      --accent: #8b84ff; --val: #fbbf24; --bar: #3a404c; --bad: #ffb4ab; --shadow: none;
    }
  }
  * { box-sizing: border-box; }
  body { margin: 0; line-height: 1.45; }
  header, main { max-width: 1080px; margin: 0 auto; padding: 0 16px; }
  header { padding-top: 22px; padding-bottom: 14px; }
  h1 { font-size: 1.5rem; margin: 0; letter-spacing: -0.01em; }
  h1 span { color: var(--accent); }
  .version { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); overflow-wrap: anywhere; margin: 2px 0 0; }
  h2 { font-size: 1rem; margin: 0 0 12px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; padding-bottom: 32px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); box-shadow: var(--shadow); padding: 18px; min-width: 0; }
  .wide { grid-column: 1 / -1; }
  @media (max-width: 800px) { main { grid-template-columns: minmax(0, 1fr); } }
  .summary { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 18px 32px; align-items: start; }
  @media (max-width: 640px) { .summary { grid-template-columns: minmax(0, 1fr); } }
  .headline { display: flex; flex-direction: column; gap: 2px; }
  .headline strong { font-size: 2.4rem; line-height: 1.1; color: var(--accent); font-variant-numeric: tabular-nums; }
  .headline span { color: var(--muted); font-size: 0.9rem; }
  dl { margin: 0; display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 6px 14px; font-size: 0.9rem; }
  dt { color: var(--muted); }
  dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
  .empty, .note { color: var(--muted); font-size: 0.85rem; margin: 8px 0 0; }
  .chart { display: block; width: 100%; height: auto; font-size: 12px; }
  .chart .grid { stroke: var(--line); stroke-width: 1; }
  .chart .axis { stroke: var(--muted); stroke-width: 1; }
  .chart .tick, .chart .legend { fill: var(--muted); }
  .chart .label { fill: var(--text); font-weight: 600; }
  .chart .series, .chart .swatch { fill: none; stroke-width: 2.2; stroke-linejoin: round; stroke-linecap: round; }
  .chart .train { stroke: var(--accent); }
  .chart .val { stroke: var(--val); }
  .chart .val.series, .chart .val.swatch { stroke-dasharray: 6 4; }
  .chart .dot { fill: var(--card); stroke-width: 2; }
  .scroll { overflow-x: auto; max-width: 100%; }
  table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.8rem; }
  caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 0.75rem; padding-top: 8px; }
  :is(#confusion, #live-confusion) th, :is(#confusion, #live-confusion) td { min-width: 38px; height: 30px; text-align: center; padding: 0 3px; }
  :is(#confusion, #live-confusion) td { border: 1px solid var(--card); }
  :is(#confusion, #live-confusion) th { color: var(--muted); font-weight: 600; }
  :is(#confusion, #live-confusion) .axis { font-size: 0.72rem; font-weight: 500; height: auto; white-space: nowrap; }
  @media (max-width: 480px) { :is(#confusion, #live-confusion) th, :is(#confusion, #live-confusion) td { min-width: 27px; height: 25px; padding: 0 1px; font-size: 0.66rem; } }
  :is(#confusion, #live-confusion) td.zero { color: var(--bar); }
  :is(#confusion, #live-confusion) td.dark { color: #fff; }
  :is(#confusion, #live-confusion) td.hit { font-weight: 600; }
  #per-class { width: 100%; font-size: 0.85rem; }
  #per-class th, #per-class td { padding: 4px 8px; text-align: right; border-bottom: 1px solid var(--line); }
  #per-class th:first-child { text-align: center; }
  #per-class thead th { color: var(--muted); font-weight: 600; }
  #per-class td.weak { color: var(--bad); font-weight: 700; }
  #per-class td.confused { color: var(--muted); }
  .digits { display: grid; grid-template-columns: repeat(auto-fill, minmax(136px, 1fr)); gap: 16px 10px; }
  figure { margin: 0; text-align: center; }
  figure img { width: 84px; height: 84px; image-rendering: pixelated; border-radius: 6px; border: 1px solid var(--line); display: block; margin: 0 auto; }
  figcaption { font-size: 0.76rem; margin-top: 4px; line-height: 1.3; font-variant-numeric: tabular-nums; }
  figcaption .pair { display: block; white-space: nowrap; }
  figcaption .guess { color: var(--bad); font-weight: 600; }
  figcaption .conf, figcaption .index { color: var(--muted); }
  footer { max-width: 1080px; margin: 0 auto; padding: 0 16px 24px; color: var(--muted); font-size: 0.78rem; }
`;

/** Accuracy on users' labelled drawings that no version trained on, beside the serving model's on the same images. */
function feedbackLine(feedback: NonNullable<ModelMetrics['feedback']>): Html {
  const share = percent(feedback.maxShare, 0);
  const used = html`${count(feedback.used)} of ${count(feedback.available)} users' corrections`;
  return html`<dt>Feedback</dt><dd>${used}, each ${feedback.weight}× per epoch (share capped at ${share})</dd>`;
}

function liveLine(live: NonNullable<ModelMetrics['liveHoldout']>): Html {
  const serving = finite(live.servingAccuracy)
    ? html` · serving ${live.servingVersion ?? ''} ${percent(live.servingAccuracy)}`
    : '';
  return html`<span class="live">${percent(live.accuracy)} on the live holdout of ${count(live.count)} users' drawings${serving}</span>`;
}

/**
 * The report of one trained version. `testImages` is the MNIST test split the
 * version was evaluated on (N×784 raw bytes): `metrics.test.worst` indexes it.
 * `live`, the version's live.json, adds a "Live traffic" section; the report
 * stored at training has none, since live traffic comes later and changes.
 */
export async function renderReport(metrics: ModelMetrics, testImages: Uint8Array, live?: StoredLive): Promise<string> {
  const { test, training } = metrics;
  const available = Math.floor(testImages.length / MNIST_PIXELS);
  const outside = test.worst.find((w) => !Number.isInteger(w.index) || w.index < 0 || w.index >= available);
  if (outside) {
    throw new RangeError(
      `worst mistake index ${outside.index} is outside the ${available} test images given; pass the split the version was evaluated on`,
    );
  }

  const mistakes = test.count - test.confusion.reduce((sum, row, i) => sum + (row[i] ?? 0), 0);
  const totalSeconds = training.history.reduce((sum, e) => sum + (finite(e.seconds) ? e.seconds : 0), 0);
  const { liveHoldout, feedback } = metrics;
  const validation =
    training.validationCount > 0
      ? `${count(training.trainCount)} training / ${count(training.validationCount)} validation images`
      : `${count(training.trainCount)} training images, no validation split`;
  const misclassified = html`<span>${count(mistakes)} misclassified · loss ${fixed(test.loss, 4)}</span>`;
  const smoothing = training.labelSmoothing ? ` · label smoothing ${training.labelSmoothing}` : '';
  const rate = `learning rate ${training.learningRate} (${training.schedule})${smoothing} · seed ${training.seed}`;

  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<title>digitnet report — ${metrics.version}</title>
<link rel="icon" href="data:,">
<style>${new Html(STYLE)}</style>
</head>
<body>
<header>
<h1>digitnet <span>evaluation report</span></h1>
<p class="version">${metrics.version}</p>
</header>
<main>
<section class="card wide summary">
<div class="headline"><strong>${percent(test.accuracy)}</strong><span>test accuracy on ${count(test.count)} images</span>${misclassified}${liveHoldout ? liveLine(liveHoldout) : ''}</div>
<dl>
<dt>Architecture</dt><dd>${metrics.arch.toUpperCase()} · ${count(metrics.params)} parameters</dd>
<dt>Backend</dt><dd>${metrics.backend}</dd>
<dt>Created</dt><dd>${utc(metrics.createdAt)}</dd>
<dt>Training</dt><dd>${training.epochs} ${training.epochs === 1 ? 'epoch' : 'epochs'} · batch ${training.batchSize} · ${rate}</dd>
<dt>Time</dt><dd>${duration(training.secondsPerEpoch)} per epoch · ${duration(totalSeconds)} in all</dd>
<dt>Data</dt><dd>${validation}</dd>
${feedback ? feedbackLine(feedback) : ''}
</dl>
</section>
${live ? liveSection(live) : ''}
${trainingCharts(training.history)}
<section class="card"><h2>Confusion matrix</h2>${confusionTable(test.confusion)}</section>
<section class="card"><h2>Per digit</h2>${perClassTable(metrics)}</section>
<section class="card wide"><h2>Most confident mistakes</h2>${worstGrid(metrics, testImages)}</section>
</main>
<footer>Evaluated on the ${count(test.count)} MNIST test images, none of them seen in training. The percentage after a mistake is the model's confidence in its wrong answer.</footer>
</body>
</html>
`;
  return page.text;
}
