/**
 * CloudWatch metrics as Embedded Metric Format (EMF) documents, one JSON log
 * line each, written through the logger. CloudWatch Logs turns such a line into
 * metrics by itself (in Lambda's log groups, and the training job's), so
 * publishing costs no API call, no permission and no wait on the request path.
 * Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 *
 * Every metric is published by `stage` and `component` (the function or job
 * that emitted it: the shared HTTP edge records Errors and ColdStart for three
 * functions). A metric may also be split by a dimension that matters for it
 * (`modelVersion`, `code`, `arch`); it is then published under both dimension
 * sets, so an alarm can still read the stage's total. What one request records
 * leaves as one line.
 */
import type { MetricsMode, Stage } from './config.ts';
import type { Logger } from './log.ts';
import type { VerdictReason } from './verdict.ts';

export const NAMESPACE = 'digitnet';

/** `drift`: the input-drift score, DriftScore, which the dashboard and an alarm already read. */
export type Component = 'predict' | 'feedback' | 'retrain' | 'live' | 'train' | 'drift';

/**
 * POST /predict's count of answers that are not a digit, one metric per reason (beside their total,
 * NotDigit): one line holds one value of a dimension, and a batch can hold several reasons.
 */
export const NOT_DIGIT_METRICS: Readonly<Record<VerdictReason, string>> = {
  no_ink: 'NotDigitNoInk',
  several_marks: 'NotDigitSeveralMarks',
  not_handwriting: 'NotDigitNotHandwriting',
  undecided: 'NotDigitUndecided',
};

/** The CloudWatch units these metrics use. */
export type Unit = 'Count' | 'Milliseconds' | 'Seconds' | 'None';

export interface BaseDimensions {
  stage: Stage;
  component: Component;
}

export interface Metric {
  name: string;
  value: number;
  unit: Unit;
  /** Dimensions this metric is split by besides the base ones, with their values. */
  by?: Readonly<Record<string, string>>;
}

export interface MetricDirective {
  Namespace: string;
  Dimensions: string[][];
  Metrics: { Name: string; Unit: Unit }[];
}

export interface EmfDocument {
  _aws: { Timestamp: number; CloudWatchMetrics: MetricDirective[] };
  [member: string]: unknown;
}

/**
 * The EMF document for these metrics: one directive per set of extra
 * dimensions, every value and dimension value a member of the root. A
 * dimension has one value per document, and a metric added twice keeps its
 * last value (the last given, both). Values that are not
 * finite numbers are left out, since the spec allows only numbers; undefined
 * when nothing is left.
 */
export function emfDocument(
  base: Readonly<BaseDimensions>,
  metrics: readonly Metric[],
  timestamp: number,
): EmfDocument | undefined {
  const baseKeys = Object.keys(base);
  const directives = new Map<string, MetricDirective>();
  const members: Record<string, unknown> = { ...base };
  const latest = new Map(metrics.map((metric) => [metric.name, metric]));
  for (const { name, value, unit, by = {} } of latest.values()) {
    if (!Number.isFinite(value)) continue;
    const extra = Object.keys(by).sort();
    const key = extra.join('\u0000');
    let directive = directives.get(key);
    if (!directive) {
      directive = {
        Namespace: NAMESPACE,
        Dimensions: extra.length === 0 ? [baseKeys] : [baseKeys, [...baseKeys, ...extra]],
        Metrics: [],
      };
      directives.set(key, directive);
    }
    directive.Metrics.push({ Name: name, Unit: unit });
    Object.assign(members, by);
    members[name] = value;
  }
  if (directives.size === 0) return undefined;
  return { _aws: { Timestamp: timestamp, CloudWatchMetrics: [...directives.values()] }, ...members };
}

/** What one request (or one job step) records; `flush` writes it as one line. */
export interface MetricSet {
  add(name: string, value: number, unit: Unit, by?: Readonly<Record<string, string>>): MetricSet;
  /** Writes what was added as one line, then starts empty; writes nothing when nothing was added. */
  flush(log: Pick<Logger, 'metrics'>): void;
}

export interface Metrics {
  begin(): MetricSet;
}

const OFF_SET: MetricSet = { add: () => OFF_SET, flush: () => {} };

/** Records nothing: METRICS=off, and the default wherever nothing reads the lines. */
export const noMetrics: Metrics = { begin: () => OFF_SET };

export function createMetrics(
  mode: MetricsMode,
  base: Readonly<BaseDimensions>,
  now: () => number = Date.now,
): Metrics {
  if (mode === 'off') return noMetrics;
  return {
    begin() {
      let pending: Metric[] = [];
      const set: MetricSet = {
        add(name, value, unit, by) {
          pending.push(by ? { name, value, unit, by } : { name, value, unit });
          return set;
        },
        flush(log) {
          const document = emfDocument(base, pending, now());
          pending = [];
          if (document) log.metrics(document);
        },
      };
      return set;
    },
  };
}
