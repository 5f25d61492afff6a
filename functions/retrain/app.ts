/**
 * The operator API as a function of its dependencies: submit a training job
 * to AWS Batch, follow it, and promote (or roll back to) a model version.
 * API Gateway authorises every route with IAM before this code runs;
 * `handler.ts` wires the real clients.
 *
 *   POST /train          {arch, epochs, batchSize?, withFeedback?}  → 202 {jobId, ...}
 *   GET  /train/{jobId}                              → 200 {jobId, status, done, model?}
 *   POST /promote        {version}                   → 200 the new models/latest.json
 *                        {version, mode: "shadow"}  or  {version, mode: "canary", percent}
 *                                                    → 200 the pointer, with the version as its candidate
 *                        {clearCandidate: true}     → 200 the pointer, without a candidate
 */
import type { JobDetail, KeyValuePair } from '@aws-sdk/client-batch';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  AppError,
  BadRequestError,
  ConflictError,
  ModelIntegrityError,
  NotFoundError,
  UpstreamError,
} from '#lib/errors';
import {
  fieldError,
  json,
  readJsonObject,
  router,
  serve,
  type Handler,
  type JsonBodyRules,
  type RawBody,
  type Methods,
  type Result,
} from '#lib/http';
import type { Logger } from '#lib/log';
import type { MetricSet, Metrics } from '#lib/metrics';
import { ARCHS, isArch, type Arch } from '#lib/training/model';
import {
  CANARY_PERCENT,
  CANDIDATE_MODES,
  compactTimestamp,
  isVersionName,
  type LatestPointer,
  type ModelMetrics,
  type ModelStore,
  type VersionSummary,
} from '#lib/storage/store';
import type { BatchTarget } from '#lib/config';
import { AUDIT_REASON_MAX_CHARS } from '#lib/storage/audit';
import type { BatchJobs } from './batch-jobs.ts';
import type { OperatorPath } from './paths.ts';

/** What POST /train accepts; anything outside these is a 400 before Batch is called. */
export const TRAIN_LIMITS = {
  epochs: { min: 1, max: 50 },
  batchSize: { min: 16, max: 1024 },
} as const;

/** The few fields these routes take fit in far less; a larger body is not a training request. */
export const MAX_BODY_BYTES = 4096;

const TRAIN_BODY: JsonBodyRules = {
  maxBytes: MAX_BODY_BYTES,
  fields: ['arch', 'epochs', 'batchSize', 'withFeedback'],
  example: '{"arch": "mlp", "epochs": 5}',
};
const PROMOTE_BODY: JsonBodyRules = {
  maxBytes: MAX_BODY_BYTES,
  fields: ['version', 'mode', 'percent', 'clearCandidate', 'pin', 'reason'],
  example: '{"version": "20261125T220000Z-mlp"}',
};
/** `serve` promotes (the default); the others make the version the candidate beside the serving one. */
export const PROMOTE_MODES = ['serve', ...CANDIDATE_MODES] as const;

/** AWS Batch job ids are UUIDs. */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Clock difference tolerated between Batch's job timestamps and the container's. */
const CLOCK_SLACK_MS = 5_000;

export type { Handler, Result };

export interface RetrainDeps {
  batch: BatchJobs;
  store: Pick<ModelStore, 'list' | 'metrics' | 'promote' | 'setCandidate' | 'clearCandidate' | 'setPinned'>;
  target: BatchTarget;
  logger: Logger;
  now?: () => Date;
  /** Submissions, Promotions and Rollbacks; unset records none. */
  metrics?: Metrics;
}

function integerField(body: Record<string, unknown>, name: string, limits: { min: number; max: number }): number {
  const value = body[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < limits.min || value > limits.max) {
    throw fieldError(name, `a whole number from ${limits.min} to ${limits.max}`, value);
  }
  return value;
}

export interface TrainRequest {
  arch: Arch;
  epochs: number;
  batchSize?: number;
  /** Train on users' corrections too (`npm run train -- --with-feedback`); omitted, the job definition decides. */
  withFeedback?: boolean;
}

export function parseTrainRequest(raw: RawBody): TrainRequest {
  const body = readJsonObject(raw, TRAIN_BODY);
  if (!isArch(body.arch)) throw fieldError('arch', `one of ${ARCHS.join(', ')}`, body.arch);
  const request: TrainRequest = { arch: body.arch, epochs: integerField(body, 'epochs', TRAIN_LIMITS.epochs) };
  if (body.batchSize !== undefined) request.batchSize = integerField(body, 'batchSize', TRAIN_LIMITS.batchSize);
  if (body.withFeedback !== undefined) {
    if (typeof body.withFeedback !== 'boolean') throw fieldError('withFeedback', 'true or false', body.withFeedback);
    request.withFeedback = body.withFeedback;
  }
  return request;
}

/** Every kind of POST /promote, with the operator's optional reason for the audit trail. */
export type PromoteRequest = { reason?: string } & (
  | { action: 'serve'; version: string; pin: boolean }
  | { action: 'candidate'; version: string; mode: 'shadow' }
  | { action: 'candidate'; version: string; mode: 'canary'; percent: number }
  | { action: 'clear' }
  | { action: 'pin'; pinned: boolean }
);

/** One line of text: it is stored in the audit record and shown in `npm run models -- --history`. */
const REASON = new RegExp(`^[^\\p{Cc}]{1,${AUDIT_REASON_MAX_CHARS}}$`, 'u');

function reasonField(value: unknown): { reason?: string } {
  if (value === undefined) return {};
  if (typeof value !== 'string' || !REASON.test(value.trim()))
    throw fieldError('reason', `one line of 1 to ${AUDIT_REASON_MAX_CHARS} characters`, value);
  return { reason: value.trim() };
}

export function parsePromoteRequest(raw: RawBody): PromoteRequest {
  const body = readJsonObject(raw, PROMOTE_BODY);
  const { version, mode, percent, clearCandidate, pin } = body;
  const reason = reasonField(body.reason);
  const others = Object.keys(body).filter((k) => k !== 'reason');
  if (clearCandidate !== undefined) {
    if (clearCandidate !== true) throw fieldError('clearCandidate', 'true', clearCandidate);
    if (others.length > 1)
      throw new BadRequestError(
        'clearCandidate takes no other field but reason: send {"clearCandidate": true}',
        'invalid_request',
      );
    return { action: 'clear', ...reason };
  }
  if (pin !== undefined && typeof pin !== 'boolean') throw fieldError('pin', 'true or false', pin);
  if (version === undefined && pin !== undefined) {
    if (others.length > 1)
      throw new BadRequestError(
        'pin alone takes no other field but reason, or send it with a version',
        'invalid_request',
      );
    return { action: 'pin', pinned: pin, ...reason };
  }
  if (!isVersionName(version)) throw fieldError('version', 'a model version name like 20261125T220000Z-mlp', version);
  if (mode !== undefined && !(PROMOTE_MODES as readonly unknown[]).includes(mode))
    throw fieldError('mode', `one of ${PROMOTE_MODES.join(', ')}`, mode);
  if (mode !== undefined && mode !== 'serve' && pin !== undefined)
    throw fieldError('pin', 'left out: a pin holds the serving version, not a candidate', pin);
  if (mode !== 'canary') {
    if (percent !== undefined) throw fieldError('percent', 'left out: only a canary answers a percentage', percent);
    return mode === 'shadow'
      ? { action: 'candidate', version, mode, ...reason }
      : { action: 'serve', version, pin: pin === true, ...reason };
  }
  return { action: 'candidate', version, mode, percent: integerField(body, 'percent', CANARY_PERCENT), ...reason };
}

const iso = (epochMs: number | undefined) => (epochMs === undefined ? undefined : new Date(epochMs).toISOString());

/** Where Batch sends a job's output unless its job definition names a log group (the stack's does: infra/training.ts). */
const DEFAULT_JOB_LOG_GROUP = '/aws/batch/job';

function logGroupOf(job: JobDetail): string {
  return job.container?.logConfiguration?.options?.['awslogs-group'] ?? DEFAULT_JOB_LOG_GROUP;
}

function envValue(job: JobDetail, name: string): string | undefined {
  return job.container?.environment?.find((pair: KeyValuePair) => pair.name === name)?.value;
}

/**
 * The version a finished job wrote: the one whose metrics carry the job's id
 * (the training job records AWS_BATCH_JOB_ID). Versions from before that was
 * recorded are matched by architecture and creation time within the job's
 * run; when several such jobs overlap, every candidate is returned rather
 * than a guess.
 */
function versionsOf(job: JobDetail, arch: string | undefined, versions: VersionSummary[]): VersionSummary[] {
  const recorded = versions.filter((v) => v.jobId === job.jobId);
  if (recorded.length > 0) return recorded;
  if (job.startedAt === undefined || job.stoppedAt === undefined) return [];
  const from = job.startedAt - CLOCK_SLACK_MS;
  const to = job.stoppedAt + CLOCK_SLACK_MS;
  return versions.filter(
    (v) =>
      v.jobId === undefined &&
      (arch === undefined || v.arch === arch) &&
      Date.parse(v.createdAt) >= from &&
      Date.parse(v.createdAt) <= to,
  );
}

export function makeHandler(deps: RetrainDeps): Handler {
  const { batch, store, target, logger } = deps;
  const now = deps.now ?? (() => new Date());

  /** S3 trouble is an upstream failure (502); integrity errors keep their meaning for the caller to map. */
  async function fromStorage<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof AppError || error instanceof ModelIntegrityError) throw error;
      logger.error(`storage failed: ${what}`, { error });
      throw new UpstreamError(`could not ${what} in the model bucket`, 'storage_error');
    }
  }

  async function submit(
    event: APIGatewayProxyEventV2,
    log: Logger,
    _params: Record<string, string>,
    metrics: MetricSet,
  ): Promise<Result> {
    const request = parseTrainRequest(event);
    const environment = [
      { name: 'ARCH', value: request.arch },
      { name: 'EPOCHS', value: String(request.epochs) },
      ...(request.batchSize === undefined ? [] : [{ name: 'BATCH_SIZE', value: String(request.batchSize) }]),
      ...(request.withFeedback === undefined ? [] : [{ name: 'WITH_FEEDBACK', value: String(request.withFeedback) }]),
    ];
    // e.g. digitnet-train-mlp-20261125T220000Z: job names sort by submission time, like model versions.
    const jobName = `digitnet-train-${request.arch}-${compactTimestamp(now())}`;
    let jobId: string | undefined;
    try {
      jobId = await batch.submit({
        jobName,
        jobQueue: target.jobQueue,
        jobDefinition: target.jobDefinition,
        containerOverrides: { environment },
      });
    } catch (error) {
      log.error('SubmitJob failed', { error, jobName });
      throw new UpstreamError(
        `AWS Batch did not accept the training job (${(error as Error).name}); the function's log has the details`,
        'batch_error',
      );
    }
    if (!jobId) throw new UpstreamError('AWS Batch answered without a job id', 'batch_error');
    const caller = (event.requestContext as { authorizer?: { iam?: { userArn?: string } } }).authorizer?.iam?.userArn;
    log.info('training job submitted', { jobId, jobName, ...request, caller });
    metrics.add('Submissions', 1, 'Count');
    return json(202, { jobId, jobName, status: 'SUBMITTED', ...request }, { location: `/train/${jobId}` });
  }

  async function status(jobId: string, log: Logger): Promise<Result> {
    if (!JOB_ID.test(jobId)) throw new BadRequestError(`"${jobId}" is not a Batch job id`, 'invalid_job_id');
    let job: JobDetail | undefined;
    try {
      job = await batch.describe(jobId);
    } catch (error) {
      log.error('DescribeJobs failed', { error, jobId });
      throw new UpstreamError(
        `AWS Batch could not describe the job (${(error as Error).name}); the function's log has the details`,
        'batch_error',
      );
    }
    // DescribeJobs sees every job in the account; answer only for our own queue.
    if (!job || job.jobQueue !== target.jobQueue) throw new NotFoundError(`no training job ${jobId}`, 'job_not_found');
    const arch = envValue(job, 'ARCH');
    const numberOf = (name: string) => {
      const value = envValue(job, name);
      return value === undefined ? undefined : Number(value);
    };
    const body: Record<string, unknown> = {
      jobId,
      jobName: job.jobName,
      status: job.status,
      done: job.status === 'SUCCEEDED' || job.status === 'FAILED',
      statusReason: job.statusReason,
      arch,
      epochs: numberOf('EPOCHS'),
      batchSize: numberOf('BATCH_SIZE'),
      withFeedback:
        envValue(job, 'WITH_FEEDBACK') === undefined ? undefined : envValue(job, 'WITH_FEEDBACK') === 'true',
      createdAt: iso(job.createdAt),
      startedAt: iso(job.startedAt),
      stoppedAt: iso(job.stoppedAt),
      attempts: job.attempts?.length ?? 0,
      exitCode: job.container?.exitCode,
      logStreamName: job.container?.logStreamName,
      logGroupName: job.container?.logStreamName === undefined ? undefined : logGroupOf(job),
    };
    if (job.status === 'SUCCEEDED') {
      const found = versionsOf(job, arch, await fromStorage('list model versions', () => store.list()));
      if (found.length === 1) {
        const [model] = found as [VersionSummary];
        body.model = {
          version: model.version,
          accuracy: model.accuracy,
          ...(model.liveAccuracy === undefined ? {} : { liveAccuracy: model.liveAccuracy }),
          serving: model.serving,
          ...(model.gate ? { gate: model.gate } : {}),
        };
      } else if (found.length > 1) {
        body.candidates = found.map((v) => ({ version: v.version, accuracy: v.accuracy, serving: v.serving }));
      }
    }
    return json(200, body);
  }

  async function promote(
    event: APIGatewayProxyEventV2,
    log: Logger,
    _params: Record<string, string>,
    metrics: MetricSet,
  ): Promise<Result> {
    const request = parsePromoteRequest(event);
    const by = { actor: 'operator' as const, ...(request.reason ? { reason: request.reason } : {}) };
    if (request.action === 'clear') {
      const pointer = await fromStorage('clear the candidate', () => store.clearCandidate({ by, now: now() }));
      log.info('candidate cleared', { modelVersion: pointer.version });
      return json(200, pointer);
    }
    if (request.action === 'pin') {
      const pointer = await fromStorage(request.pinned ? 'pin the pointer' : 'unpin the pointer', () =>
        store.setPinned(request.pinned, { by, now: now() }),
      );
      log.info(request.pinned ? 'pointer pinned' : 'pointer unpinned', { modelVersion: pointer.version });
      return json(200, pointer);
    }
    const { version } = request;
    let pointer: LatestPointer;
    let stored: ModelMetrics | undefined;
    try {
      stored = await fromStorage('read the version', () => store.metrics(version));
      if (!stored)
        throw new NotFoundError(
          `model version ${version} does not exist or never finished uploading`,
          'version_not_found',
        );
      pointer = await fromStorage(
        request.action === 'serve' ? 'promote the version' : 'set the candidate',
        request.action === 'serve'
          ? () => store.promote(version, { now: now(), by, pin: request.pin })
          : () => {
              const { action: _, reason: __, ...wanted } = request;
              return store.setCandidate(wanted, { now: now(), by });
            },
      );
    } catch (error) {
      if (error instanceof ModelIntegrityError)
        throw new ConflictError(`model version ${version} cannot be served: ${error.message}`, 'version_incomplete');
      throw error;
    }
    if (request.action === 'serve') {
      log.info('model promoted', { version, previous: pointer.previous });
      // Version names sort by creation time: going back to an older one is a rollback.
      const rollback = pointer.previous !== undefined && version < pointer.previous;
      metrics.add(rollback ? 'Rollbacks' : 'Promotions', 1, 'Count');
    } else log.info('candidate set', { modelVersion: pointer.version, candidate: pointer.candidate });
    // The gate is not enforced here (an operator decides, and a candidate is an experiment); its refusal is told.
    const refused = stored.gate && !stored.gate.passed ? { gate: stored.gate } : {};
    return json(200, { ...pointer, ...refused });
  }

  const routes: Record<OperatorPath, Methods> = {
    '/train': { POST: submit },
    '/train/{jobId}': { GET: (_event, log, { jobId }) => status(jobId!, log) },
    '/promote': { POST: promote },
  };
  return serve(logger, router(routes), { metrics: deps.metrics });
}
