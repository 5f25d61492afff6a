/**
 * Stack settings from CDK context (`cdk deploy -c stage=prod -c trainVcpu=8`),
 * validated in one place so a typo fails synth instead of a deployment.
 * Values given on the command line arrive as strings, so numbers and flags
 * are parsed from either form.
 */
import type { Node } from 'constructs';
import { ROLLOUT_POLICY_SETTINGS, STAGES, type Stage } from '#lib/config';
import { LOW_CONFIDENCE_DEFAULT } from '#lib/live/summary';
import { DEFAULT_POLICY, type RolloutPolicy } from '#lib/rollout/decide';
import { ARCHS, isArch, type Arch } from '#lib/training/model';

export type Reservation = number | 'off';

export interface StackConfig {
  stage: Stage;
  /**
   * Lambda's CPU share grows with memory up to one full vCPU at 1,769 MB, so
   * below that a single-threaded handler's time shrinks as its price per
   * millisecond grows and the cost per prediction stays flat; above it a second
   * vCPU goes unused and the cost only grows. `npm run bench -- cost` measures
   * this and picks the size: the lowest p99 among those within 10% of the
   * cheapest per prediction (scripts/bench/cost-model.ts, chooseMemory).
   */
  predictMemoryMiB: number;
  predictTimeoutSeconds: number;
  /**
   * Concurrent executions set aside for each function, or 'off'. The predict
   * function can never use more, so a flood of callers cannot take the
   * account's whole Lambda concurrency; the retrain function (promotions,
   * rollbacks) always has its share; the feedback function, a public route
   * that writes, can never use more than its own. Lambda keeps 100 of the
   * account's limit unreserved, so an account whose limit is below 100 plus
   * these (a new account may start at 10) fails the deploy unless all are 'off'.
   */
  predictReservedConcurrency: Reservation;
  retrainReservedConcurrency: Reservation;
  feedbackReservedConcurrency: Reservation;
  modelRefreshSeconds: number;
  throttleRateLimit: number;
  throttleBurstLimit: number;
  /** POST /feedback's own limits, at most the stage's: a correction costs a write, and nobody sends many. */
  feedbackThrottleRateLimit: number;
  feedbackThrottleBurstLimit: number;
  trainVcpu: number;
  trainMemoryGiB: number;
  trainTimeoutMinutes: number;
  noncurrentVersionExpiryDays: number;
  logRetentionDays: number;
  /** What a job trains when submitted without overrides, as the weekly schedule does. */
  trainArch: Arch;
  trainEpochs: number;
  /** Whether such a job also trains on users' corrections (`--with-feedback`); the live holdout is scored either way. */
  trainWithFeedback: boolean;
  weeklyRetrain: boolean;
  corsOrigins: string[];
  /** Share of predictions the predict function captures (CAPTURE_SAMPLE_RATE). */
  captureSampleRate: number;
  /** Firehose writes a captures object when either fills, whichever comes first. */
  captureBufferMiB: number;
  captureBufferSeconds: number;
  /** Days captures and feedback are kept before the bucket deletes them. */
  liveRetentionDays: number;
  /** How often the live summary (models/<version>/live.json) is refreshed. */
  liveSummaryIntervalMinutes: number;
  /** How often the rollout function applies the rollout policy (it also runs when a model's alarm goes off). */
  rolloutIntervalMinutes: number;
  /** The policy it applies: context keys `rolloutMinSamples`, `rolloutMinLabelled`, … (README, "Automatic rollout"). */
  rolloutPolicy: RolloutPolicy;
  /** An answer below this confidence counts as LowConfidence (LOW_CONFIDENCE_THRESHOLD). */
  lowConfidenceThreshold: number;
  /** Where the alarm topic sends e-mail; none when absent (subscribe to the topic yourself). */
  alarmEmail?: string;
  /** Alarm thresholds (infra/monitoring.ts; README, "Metrics and alarms"). */
  alarmApi5xxPercent: number;
  alarmPredictP99Ms: number;
  alarmApiThrottles: number;
  alarmLowConfidencePercent: number;
  alarmDriftScore: number;
}

export const STACK_DEFAULTS: StackConfig = {
  stage: 'dev',
  predictMemoryMiB: 1769,
  predictTimeoutSeconds: 10,
  predictReservedConcurrency: 50,
  retrainReservedConcurrency: 2,
  feedbackReservedConcurrency: 10,
  modelRefreshSeconds: 60,
  throttleRateLimit: 50,
  throttleBurstLimit: 100,
  feedbackThrottleRateLimit: 10,
  feedbackThrottleBurstLimit: 20,
  trainVcpu: 4,
  trainMemoryGiB: 8,
  trainTimeoutMinutes: 120,
  noncurrentVersionExpiryDays: 30,
  logRetentionDays: 30,
  trainArch: 'cnn',
  trainEpochs: 12,
  trainWithFeedback: false,
  weeklyRetrain: false,
  corsOrigins: ['*'],
  captureSampleRate: 1,
  captureBufferMiB: 5,
  captureBufferSeconds: 300,
  liveRetentionDays: 90,
  liveSummaryIntervalMinutes: 60,
  rolloutIntervalMinutes: 15,
  rolloutPolicy: DEFAULT_POLICY,
  lowConfidenceThreshold: LOW_CONFIDENCE_DEFAULT,
  alarmApi5xxPercent: 5,
  alarmPredictP99Ms: 1000,
  alarmApiThrottles: 20,
  alarmLowConfidencePercent: 30,
  alarmDriftScore: 0.25,
};

/** Fargate's allowed memory range (GiB) for each vCPU size. */
const FARGATE_MEMORY_GIB: Record<number, [number, number]> = {
  0.25: [0.5, 2],
  0.5: [1, 4],
  1: [2, 8],
  2: [4, 16],
  4: [8, 30],
  8: [16, 60],
  16: [32, 120],
};

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

export class StackConfigError extends Error {
  override name = 'StackConfigError';
}

type Lookup = (key: string) => unknown;

/** `minSamples` is set with the context key `rolloutMinSamples`, and so on. */
type RolloutContextKey = `rollout${Capitalize<keyof RolloutPolicy>}`;
const rolloutContextKey = (key: keyof RolloutPolicy) =>
  `rollout${key[0]!.toUpperCase()}${key.slice(1)}` as RolloutContextKey;

/** Every context key with its default as `-c key=value` takes it; the rollout policy as its own keys. */
export function contextDefaults(): [string, string][] {
  const { rolloutPolicy: policy, ...rest } = STACK_DEFAULTS;
  return [
    ...Object.entries(rest).map(([key, value]): [string, string] => [
      key,
      Array.isArray(value) ? value.join(',') : String(value),
    ]),
    ...(Object.keys(ROLLOUT_POLICY_SETTINGS) as (keyof RolloutPolicy)[]).map((key): [string, string] => [
      rolloutContextKey(key),
      String(policy[key]),
    ]),
  ];
}

function rolloutPolicy(get: Lookup): RolloutPolicy {
  const policy = { ...DEFAULT_POLICY };
  for (const key of Object.keys(ROLLOUT_POLICY_SETTINGS) as (keyof RolloutPolicy)[]) {
    const { min, max } = ROLLOUT_POLICY_SETTINGS[key];
    policy[key] = number(get, rolloutContextKey(key), DEFAULT_POLICY[key], min, max, false);
  }
  return policy;
}

function number(
  get: Lookup,
  key: keyof StackConfig | RolloutContextKey,
  fallback: number,
  min: number,
  max: number,
  integer = true,
): number {
  const raw = get(key);
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (
    typeof value !== 'number' ||
    !Number.isFinite(value) ||
    value < min ||
    value > max ||
    (integer && !Number.isInteger(value))
  ) {
    throw new StackConfigError(
      `context "${key}" must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}; got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function flag(get: Lookup, key: keyof StackConfig, fallback: boolean): boolean {
  const raw = get(key);
  if (raw === undefined) return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new StackConfigError(`context "${key}" must be true or false; got ${JSON.stringify(raw)}`);
}

function reservation(get: Lookup, key: keyof StackConfig, fallback: Reservation): Reservation {
  const raw = get(key);
  if (raw === 'off' || raw === false || raw === 'false') return 'off';
  // 0 would be a reservation that throttles every call, not the absence of one.
  return raw === undefined ? fallback : number(get, key, 0, 1, 10_000);
}

function origins(get: Lookup, fallback: string[]): string[] {
  const raw = get('corsOrigins');
  if (raw === undefined) return fallback;
  const list = typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : raw;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    !list.every((o) => typeof o === 'string' && (o === '*' || /^https?:\/\/[^\s/]+$/.test(o)))
  ) {
    throw new StackConfigError(
      `context "corsOrigins" must be "*" or comma-separated origins like https://example.com; got ${JSON.stringify(raw)}`,
    );
  }
  return list as string[];
}

function email(get: Lookup): string | undefined {
  const raw = get('alarmEmail');
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !/^[^\s@,]+@[^\s@,]+\.[^\s@,]+$/.test(raw)) {
    throw new StackConfigError(`context "alarmEmail" must be one e-mail address; got ${JSON.stringify(raw)}`);
  }
  return raw;
}

export function readStackConfig(node: Pick<Node, 'tryGetContext'>): StackConfig {
  const get: Lookup = (key) => node.tryGetContext(key);
  const stage = get('stage') ?? STACK_DEFAULTS.stage;
  if (typeof stage !== 'string' || !(STAGES as readonly string[]).includes(stage)) {
    throw new StackConfigError(`context "stage" must be one of ${STAGES.join(', ')}; got ${JSON.stringify(stage)}`);
  }
  const trainVcpu = number(get, 'trainVcpu', STACK_DEFAULTS.trainVcpu, 0.25, 16, false);
  const memoryRange = FARGATE_MEMORY_GIB[trainVcpu];
  if (!memoryRange) {
    throw new StackConfigError(
      `context "trainVcpu" must be a Fargate size (${Object.keys(FARGATE_MEMORY_GIB).join(', ')}); got ${trainVcpu}`,
    );
  }
  const trainMemoryGiB = number(
    get,
    'trainMemoryGiB',
    Math.max(STACK_DEFAULTS.trainMemoryGiB, memoryRange[0]),
    memoryRange[0],
    memoryRange[1],
    false,
  );
  const logRetentionDays = number(get, 'logRetentionDays', STACK_DEFAULTS.logRetentionDays, 1, 3653);
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    throw new StackConfigError(
      `context "logRetentionDays" must be one of ${LOG_RETENTION_DAYS.join(', ')}; got ${logRetentionDays}`,
    );
  }
  const trainArch = get('trainArch') ?? STACK_DEFAULTS.trainArch;
  if (!isArch(trainArch)) {
    throw new StackConfigError(
      `context "trainArch" must be one of ${ARCHS.join(', ')}; got ${JSON.stringify(trainArch)}`,
    );
  }
  const throttleRateLimit = number(get, 'throttleRateLimit', STACK_DEFAULTS.throttleRateLimit, 1, 10_000);
  const throttleBurstLimit = number(
    get,
    'throttleBurstLimit',
    Math.max(STACK_DEFAULTS.throttleBurstLimit, throttleRateLimit),
    1,
    5_000,
  );
  const alarmEmail = email(get);
  return {
    stage: stage as Stage,
    predictMemoryMiB: number(get, 'predictMemoryMiB', STACK_DEFAULTS.predictMemoryMiB, 256, 10_240),
    predictTimeoutSeconds: number(get, 'predictTimeoutSeconds', STACK_DEFAULTS.predictTimeoutSeconds, 3, 29),
    predictReservedConcurrency: reservation(
      get,
      'predictReservedConcurrency',
      STACK_DEFAULTS.predictReservedConcurrency,
    ),
    retrainReservedConcurrency: reservation(
      get,
      'retrainReservedConcurrency',
      STACK_DEFAULTS.retrainReservedConcurrency,
    ),
    modelRefreshSeconds: number(get, 'modelRefreshSeconds', STACK_DEFAULTS.modelRefreshSeconds, 0, 86_400),
    feedbackReservedConcurrency: reservation(
      get,
      'feedbackReservedConcurrency',
      STACK_DEFAULTS.feedbackReservedConcurrency,
    ),
    throttleRateLimit,
    throttleBurstLimit,
    // A route setting replaces the stage's, so anything above the stage's would loosen it.
    feedbackThrottleRateLimit: number(
      get,
      'feedbackThrottleRateLimit',
      Math.min(STACK_DEFAULTS.feedbackThrottleRateLimit, throttleRateLimit),
      1,
      throttleRateLimit,
    ),
    feedbackThrottleBurstLimit: number(
      get,
      'feedbackThrottleBurstLimit',
      Math.min(STACK_DEFAULTS.feedbackThrottleBurstLimit, throttleBurstLimit),
      1,
      throttleBurstLimit,
    ),
    trainVcpu,
    trainMemoryGiB,
    trainTimeoutMinutes: number(get, 'trainTimeoutMinutes', STACK_DEFAULTS.trainTimeoutMinutes, 10, 24 * 60),
    noncurrentVersionExpiryDays: number(
      get,
      'noncurrentVersionExpiryDays',
      STACK_DEFAULTS.noncurrentVersionExpiryDays,
      1,
      3650,
    ),
    logRetentionDays,
    trainArch,
    trainEpochs: number(get, 'trainEpochs', STACK_DEFAULTS.trainEpochs, 1, 50),
    trainWithFeedback: flag(get, 'trainWithFeedback', STACK_DEFAULTS.trainWithFeedback),
    weeklyRetrain: flag(get, 'weeklyRetrain', STACK_DEFAULTS.weeklyRetrain),
    corsOrigins: origins(get, STACK_DEFAULTS.corsOrigins),
    captureSampleRate: number(get, 'captureSampleRate', STACK_DEFAULTS.captureSampleRate, 0, 1, false),
    // Firehose's own bounds for delivery to S3.
    captureBufferMiB: number(get, 'captureBufferMiB', STACK_DEFAULTS.captureBufferMiB, 1, 128),
    captureBufferSeconds: number(get, 'captureBufferSeconds', STACK_DEFAULTS.captureBufferSeconds, 0, 900),
    liveRetentionDays: number(get, 'liveRetentionDays', STACK_DEFAULTS.liveRetentionDays, 1, 3650),
    liveSummaryIntervalMinutes: number(
      get,
      'liveSummaryIntervalMinutes',
      STACK_DEFAULTS.liveSummaryIntervalMinutes,
      5,
      24 * 60,
    ),
    rolloutIntervalMinutes: number(get, 'rolloutIntervalMinutes', STACK_DEFAULTS.rolloutIntervalMinutes, 1, 24 * 60),
    rolloutPolicy: rolloutPolicy(get),
    lowConfidenceThreshold: number(get, 'lowConfidenceThreshold', STACK_DEFAULTS.lowConfidenceThreshold, 0, 1, false),
    ...(alarmEmail ? { alarmEmail } : {}),
    alarmApi5xxPercent: number(get, 'alarmApi5xxPercent', STACK_DEFAULTS.alarmApi5xxPercent, 0.1, 100, false),
    alarmPredictP99Ms: number(get, 'alarmPredictP99Ms', STACK_DEFAULTS.alarmPredictP99Ms, 10, 60_000),
    alarmApiThrottles: number(get, 'alarmApiThrottles', STACK_DEFAULTS.alarmApiThrottles, 1, 1_000_000),
    alarmLowConfidencePercent: number(
      get,
      'alarmLowConfidencePercent',
      STACK_DEFAULTS.alarmLowConfidencePercent,
      1,
      100,
      false,
    ),
    alarmDriftScore: number(get, 'alarmDriftScore', STACK_DEFAULTS.alarmDriftScore, 0.001, 100, false),
  };
}
