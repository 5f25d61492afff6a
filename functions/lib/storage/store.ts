/**
 * ModelStore: model versions in one bucket, as laid out in DESIGN.md.
 *
 *   models/<version>/weights.bin, model.json, profile.json, metrics.json (written in that order)
 *   models/latest.json  {"version", "promotedAt", "accuracy", ...}
 *
 * metrics.json is written last and records the checksums of the others, so
 * a version is complete exactly when its metrics.json exists and matches.
 * Promotion is one write of latest.json, made only after the version has been
 * read back and verified; rollback is the same write with an older version.
 * That write is conditional on the pointer its caller's decision was based on
 * (If-Match on its ETag), so a promotion never silently undoes another one.
 * The pointer may also name a candidate (shadow or canary) beside the serving
 * version; setting or clearing it is the same conditional write, and every
 * promotion clears it: its comparison was against the version it replaces.
 * Every write that changes the pointer is followed by one audit record
 * (`audit.ts`) saying who changed it, from what, to what and why.
 *
 * Every read has a size cap checked before the body is read, and nothing is
 * built before the files match their checksums and the topology matches the
 * recorded parameter count.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  ConflictError,
  ModelIntegrityError,
  ObjectTooLargeError,
  PointerChangedError,
  PointerInvalidError,
  WriteConflictError,
} from '../errors.ts';
import { inferenceModel, type InferenceModel } from '../inference-model.ts';
import type { Evaluation } from '../training/evaluate.ts';
import { isArch, type Arch } from '../training/archs.ts';
import type { ObjectStore, ReadOptions, StoredObject } from './objects.ts';
import {
  AUDIT_PREFIX,
  AUDIT_REASON_MAX_CHARS,
  AUDIT_RECORD_MAX_BYTES,
  auditKey,
  auditRecord,
  type AuditRecord,
  type ChangedBy,
  parseAuditRecord,
} from './audit.ts';
import type { GateDecision } from '../training/quality-gate.ts';
import { topologyParams } from './topology.ts';
import type { Schedule, TrainResult } from '../training/train-loop.ts';

export const MODELS_PREFIX = 'models/';
export const LATEST_KEY = 'models/latest.json';
const WEIGHTS_FILE = 'weights.bin';
const MODEL_FILE = 'model.json';
const METRICS_FILE = 'metrics.json';

/** Far above what these files hold (a pointer is ~200 bytes, a CNN's model.json ~4 KB, metrics ~20 KB). */
const POINTER_MAX_BYTES = 16 * 1024;
const MODEL_JSON_MAX_BYTES = 256 * 1024;
const METRICS_MAX_BYTES = 1024 * 1024;
/** Whatever a version's metrics claim, no weights file larger than this is read (the CNN's is 150 KB, the MLP's 1 MB). */
export const WEIGHTS_MAX_BYTES = 64 * 1024 * 1024;
const BYTES_PER_PARAM = 4;
/** A promotion that did not base its decision on a pointer re-reads it and tries again this many times on a race. */
const PROMOTE_ATTEMPTS = 3;

/** A further file's name: a plain name in the version's folder, never a path. */
const EXTRA_FILE = /^[a-z0-9][a-z0-9.-]{0,63}$/;

/** e.g. 20261125T220000Z-mlp: sorts by time and names its architecture. */
const VERSION_PATTERN = /^\d{8}T\d{6}Z-[a-z0-9]+$/;

/** A UTC time as 20261125T220000Z: compact, sortable, safe in keys and job names. */
export function compactTimestamp(at: Date): string {
  return at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function versionName(arch: Arch, at: Date): string {
  return `${compactTimestamp(at)}-${arch}`;
}

export function isVersionName(value: unknown): value is string {
  return typeof value === 'string' && VERSION_PATTERN.test(value);
}

export interface ModelMetrics {
  version: string;
  arch: Arch;
  /** The AWS Batch job (or local job) that trained it, so a job's status can name its version. */
  jobId?: string;
  createdAt: string;
  backend: string;
  params: number;
  training: Omit<TrainResult, 'history'> & {
    epochs: number;
    batchSize: number;
    learningRate: number;
    schedule: Schedule;
    /** Absent from versions stored before the option existed (they trained without). */
    labelSmoothing?: number;
    seed: number;
    history: TrainResult['history'];
  };
  test: Evaluation;
  /** The quality gate's decision when the version was trained, against the model serving then. */
  gate?: GateDecision;
  /**
   * Accuracy on the live holdout (labelled captures no version trains on), and
   * the serving model's on the same images; absent when there were none.
   */
  liveHoldout?: LiveHoldoutScore;
  /** The users' corrections it trained on (`--with-feedback`): how many of how many, repeated how often, capped where. */
  feedback?: { used: number; available: number; weight: number; maxShare: number };
  artifacts: {
    weightsBytes: number;
    weightsSha256: string;
    modelJsonSha256: string;
    /** SHA-256 of each further file saved with the version (its profile.json), by name; absent in older versions. */
    files?: Record<string, string>;
  };
}

/** A file saved with a version, before its metrics, and covered by their checksums. */
export interface VersionFile {
  name: string;
  body: string;
  contentType: string;
}

export interface LiveHoldoutScore {
  count: number;
  accuracy: number;
  servingAccuracy?: number;
  servingVersion?: string;
}

export type MetricsInput = Omit<ModelMetrics, 'artifacts'>;

export const CANDIDATE_MODES = ['shadow', 'canary'] as const;
export type CandidateMode = (typeof CANDIDATE_MODES)[number];
/** A canary answers a whole percentage of requests: at least one, and never all (that is a promotion). */
export const CANARY_PERCENT = { min: 1, max: 99 } as const;

/**
 * A version tried beside the serving one. A shadow runs on every request and
 * never answers; a canary answers `percent`% of requests, picked by a hash of
 * the request (`rollout.ts`). Both record their answer beside the other's in
 * the capture, so live figures compare the two on the same inputs.
 */
export type Candidate =
  | { version: string; mode: 'shadow'; since: string }
  | { version: string; mode: 'canary'; percent: number; since: string };

export interface LatestPointer {
  version: string;
  promotedAt: string;
  accuracy: number;
  arch: Arch;
  /** Set when the quality gate was overridden, with the operator's reason. */
  forced?: { reason: string };
  previous?: string;
  candidate?: Candidate;
  /** An operator's pin: no automatic decision (schedule, rollback, training) changes this pointer. */
  pinned?: true;
  /** When the pointer last changed (promotion, candidate, pin); absent in pointers written before it was recorded. */
  changedAt?: string;
}

/** A pointer as read: a malformed candidate is left out and said why, so it never stops the serving version. */
export interface ParsedPointer {
  pointer: LatestPointer;
  candidateInvalid?: string;
}

/**
 * What every pointer write takes: the state its decision read (`basedOn`; the
 * write is conditional on it), who acts and why (`by`, recorded in the audit
 * trail; an operator without a reason when left out), and the time.
 */
export interface WriteOptions {
  basedOn?: PointerState;
  by?: ChangedBy;
  now?: Date;
}

/** The pointer as read, with the ETag a conditional write of it must match. */
export interface PointerState {
  pointer?: LatestPointer;
  /** Unset when there is no pointer yet (then a write requires that there still is none). */
  etag?: string;
  /** Why the stored pointer is not a pointer; a promotion based on this state replaces it. */
  invalid?: string;
  /** Why the stored pointer's candidate was left out; any write based on this state replaces it. */
  candidateInvalid?: string;
}

export interface VersionSummary {
  version: string;
  arch: Arch;
  jobId?: string;
  accuracy: number;
  /** Accuracy on the live holdout when it was trained, if there was one. */
  liveAccuracy?: number;
  createdAt: string;
  serving: boolean;
  gate?: GateDecision;
}

export interface LoadedModel {
  model: InferenceModel;
  metrics: ModelMetrics;
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

function versionKey(version: string, file: string): string {
  if (!isVersionName(version)) throw new ModelIntegrityError(`"${version}" is not a model version name`);
  return `${MODELS_PREFIX}${version}/${file}`;
}

function parseJson<T>(bytes: Buffer, what: string, Invalid = ModelIntegrityError): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new Invalid(`${what} is not valid JSON`);
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isCanaryPercent = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= CANARY_PERCENT.min && (value as number) <= CANARY_PERCENT.max;

/** A candidate built from its known fields only, or why the stored one is not one. */
function parseCandidate(value: unknown, serving: string): Candidate | string {
  if (!isObject(value)) return 'is not an object';
  const { version, mode, percent, since } = value;
  if (!isVersionName(version)) return `names no model version (version: ${JSON.stringify(version) ?? 'missing'})`;
  if (version === serving) return `is the serving version ${serving}`;
  if (typeof since !== 'string' || Number.isNaN(Date.parse(since))) return 'has no since time';
  if (mode === 'shadow') return percent === undefined ? { version, mode, since } : 'is a shadow with a percent';
  if (mode !== 'canary') return `has an unknown mode ${JSON.stringify(mode) ?? '(missing)'}`;
  if (!isCanaryPercent(percent))
    return `is a canary whose percent is not a whole number from ${CANARY_PERCENT.min} to ${CANARY_PERCENT.max}`;
  return { version, mode, percent, since };
}

/**
 * The one reader of the pointer's bytes: anything but a well-formed pointer is
 * a PointerInvalidError. A malformed candidate is not: the serving version
 * stays servable, the candidate is left out and `candidateInvalid` says why.
 */
export function parsePointer(bytes: Buffer): ParsedPointer {
  const value = parseJson<unknown>(bytes, LATEST_KEY, PointerInvalidError);
  const invalid = (why: string) => new PointerInvalidError(`${LATEST_KEY} ${why}`);
  if (!isObject(value))
    throw invalid(
      `must be a JSON object; it is ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
    );
  if (!isVersionName(value.version))
    throw invalid(`names no model version (version: ${JSON.stringify(value.version) ?? 'missing'})`);
  if (typeof value.promotedAt !== 'string') throw invalid('has no promotedAt time');
  if (typeof value.accuracy !== 'number' || !Number.isFinite(value.accuracy)) throw invalid('has no numeric accuracy');
  if (!isArch(value.arch)) throw invalid(`has an unknown arch ${JSON.stringify(value.arch)}`);
  if (value.previous !== undefined && !isVersionName(value.previous))
    throw invalid('has a previous that is not a version name');
  if (value.forced !== undefined && !(isObject(value.forced) && typeof value.forced.reason === 'string'))
    throw invalid('has a malformed forced');
  if (value.pinned !== undefined && value.pinned !== true) throw invalid('has a pinned that is not true');
  if (
    value.changedAt !== undefined &&
    (typeof value.changedAt !== 'string' || Number.isNaN(Date.parse(value.changedAt)))
  )
    throw invalid('has a changedAt that is not a time');
  const { candidate: stored, ...rest } = value;
  const pointer = rest as unknown as LatestPointer;
  if (stored === undefined) return { pointer };
  const candidate = parseCandidate(stored, pointer.version);
  if (typeof candidate === 'string') return { pointer, candidateInvalid: `${LATEST_KEY}'s candidate ${candidate}` };
  return { pointer: { ...pointer, candidate } };
}

/** Checks the fields the loader relies on before trusting any of them. */
function parseMetrics(bytes: Buffer, version: string): ModelMetrics {
  const value = parseJson<Record<string, unknown>>(bytes, `metrics of ${version}`);
  const artifacts = isObject(value) && isObject(value.artifacts) ? value.artifacts : undefined;
  const count = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!artifacts || value.version !== version || !count(value.params) || !count(artifacts.weightsBytes)) {
    throw new ModelIntegrityError(`metrics of ${version} are malformed (version, params or artifacts)`);
  }
  if (typeof artifacts.weightsSha256 !== 'string' || typeof artifacts.modelJsonSha256 !== 'string') {
    throw new ModelIntegrityError(`metrics of ${version} record no checksums`);
  }
  const files = artifacts.files;
  if (files !== undefined && !(isObject(files) && Object.values(files).every((h) => typeof h === 'string'))) {
    throw new ModelIntegrityError(`metrics of ${version} record malformed file checksums`);
  }
  return value as unknown as ModelMetrics;
}

/** The weights' size a version's metrics allow: float32, one per recorded parameter, and under the global cap. */
function weightsLimit(metrics: ModelMetrics): number {
  const expected = metrics.params * BYTES_PER_PARAM;
  if (expected > WEIGHTS_MAX_BYTES) {
    throw new ModelIntegrityError(
      `version ${metrics.version} records ${metrics.params} parameters; at most ${WEIGHTS_MAX_BYTES / BYTES_PER_PARAM} are served`,
    );
  }
  if (metrics.artifacts.weightsBytes !== expected) {
    throw new ModelIntegrityError(
      `version ${metrics.version} records ${metrics.artifacts.weightsBytes} bytes of weights for ${metrics.params} float32 parameters (${expected} bytes)`,
    );
  }
  return expected;
}

export class ModelStore {
  constructor(private readonly objects: ObjectStore) {}

  /**
   * Writes a new, immutable version: weights, topology, `files`, then metrics
   * with the checksums of all of them, and reads weights, topology and metrics
   * back before returning. A file saved here is part of the complete version
   * (read it with `verifiedFile`); `attach` is for what may come later.
   */
  async save(model: tfl.LayersModel, input: MetricsInput, files: readonly VersionFile[] = []): Promise<ModelMetrics> {
    const { version } = input;
    for (const { name } of files) {
      if (!EXTRA_FILE.test(name) || [WEIGHTS_FILE, MODEL_FILE, METRICS_FILE].includes(name))
        throw new ModelIntegrityError(`"${name}" cannot be saved as a file of a version`);
    }
    if (await this.objects.exists(versionKey(version, MODEL_FILE))) {
      throw new ModelIntegrityError(`version ${version} already exists; versions are immutable`);
    }
    let metrics: ModelMetrics | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const weights = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
        const modelJson = JSON.stringify({
          format: 'layers-model',
          generatedBy: artifacts.generatedBy,
          convertedBy: null,
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs }],
        });
        metrics = {
          ...input,
          artifacts: {
            weightsBytes: weights.byteLength,
            weightsSha256: sha256(weights),
            modelJsonSha256: sha256(modelJson),
            ...(files.length > 0 ? { files: Object.fromEntries(files.map((f) => [f.name, sha256(f.body)])) } : {}),
          },
        };
        await this.objects.put(versionKey(version, WEIGHTS_FILE), weights);
        await this.objects.put(versionKey(version, MODEL_FILE), modelJson, 'application/json');
        for (const file of files) await this.objects.put(versionKey(version, file.name), file.body, file.contentType);
        await this.objects.put(versionKey(version, METRICS_FILE), JSON.stringify(metrics), 'application/json');
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
      }),
    );
    await this.verify(version);
    return metrics!;
  }

  /** Extra files stored beside a version, such as its HTML report. */
  async attach(version: string, file: string, body: string | Buffer, contentType: string): Promise<void> {
    await this.objects.put(versionKey(version, file), body, contentType);
  }

  /** Throws ObjectTooLargeError beyond `options.maxBytes`, for a reader that must stay cheap. */
  async attachment(version: string, file: string, options: ReadOptions = {}): Promise<Buffer | undefined> {
    return (await this.objects.get(versionKey(version, file), options))?.body;
  }

  /**
   * A file saved with a version (`save`'s `files`), checked against the
   * checksum its metrics record; undefined when the version is incomplete or
   * was saved without that file. Throws ModelIntegrityError when the file is
   * missing, too large or does not match.
   */
  async verifiedFile(version: string, file: string, maxBytes: number): Promise<Buffer | undefined> {
    const key = versionKey(version, file);
    const metrics = await this.metrics(version);
    const recorded = metrics?.artifacts.files?.[file];
    if (recorded === undefined) return undefined;
    const stored = await this.read(key, maxBytes);
    if (!stored) throw new ModelIntegrityError(`version ${version} is missing ${file}`);
    if (sha256(stored.body) !== recorded)
      throw new ModelIntegrityError(`${file} of ${version} does not match its recorded checksum`);
    return stored.body;
  }

  /** A capped read whose size failure is an integrity failure (of the pointer, or of a version). */
  private async read(key: string, maxBytes: ReadOptions['maxBytes']): Promise<StoredObject | undefined>;
  private async read(
    key: string,
    maxBytes: ReadOptions['maxBytes'],
    etag: string | undefined,
  ): Promise<StoredObject | 'unchanged' | undefined>;
  private async read(
    key: string,
    maxBytes: ReadOptions['maxBytes'],
    etag?: string,
  ): Promise<StoredObject | 'unchanged' | undefined> {
    try {
      return await this.objects.getIfChanged(key, etag, { maxBytes });
    } catch (error) {
      if (!(error instanceof ObjectTooLargeError)) throw error;
      throw key === LATEST_KEY ? new PointerInvalidError(error.message) : new ModelIntegrityError(error.message);
    }
  }

  async metrics(version: string): Promise<ModelMetrics | undefined> {
    const stored = await this.read(versionKey(version, METRICS_FILE), METRICS_MAX_BYTES);
    return stored && parseMetrics(stored.body, version);
  }

  /** Reads a version's artifacts and checks them against the checksums in its metrics. */
  async verify(version: string): Promise<{ metrics: ModelMetrics; artifacts: tf.io.ModelArtifacts }> {
    // Keys first: a bad version name throws before any request is in flight.
    const modelKey = versionKey(version, MODEL_FILE);
    const weightsKey = versionKey(version, WEIGHTS_FILE);
    const incomplete = () =>
      new ModelIntegrityError(`version ${version} is missing or incomplete (no ${METRICS_FILE})`);
    const reading = this.metrics(version);
    // The weights' cap comes from the metrics, but is only awaited once the weights' size is known:
    // a cold start still waits for one round trip to storage, not two.
    const weightsCap = reading.then((m) => (m ? weightsLimit(m) : Promise.reject(incomplete())));
    // Awaited only once the weights' response arrives (if ever): until then a rejection is not unhandled, just early.
    weightsCap.catch(() => {});
    const [metrics, modelJson, weights] = await Promise.all([
      reading,
      this.read(modelKey, MODEL_JSON_MAX_BYTES),
      this.read(weightsKey, weightsCap),
    ]);
    if (!metrics) throw incomplete();
    if (!modelJson || !weights)
      throw new ModelIntegrityError(`version ${version} is missing ${!modelJson ? MODEL_FILE : WEIGHTS_FILE}`);
    if (sha256(modelJson.body) !== metrics.artifacts.modelJsonSha256) {
      throw new ModelIntegrityError(`${MODEL_FILE} of ${version} does not match its recorded checksum`);
    }
    if (
      weights.body.byteLength !== metrics.artifacts.weightsBytes ||
      sha256(weights.body) !== metrics.artifacts.weightsSha256
    ) {
      throw new ModelIntegrityError(
        `${WEIGHTS_FILE} of ${version} does not match its recorded checksum (${weights.body.byteLength} bytes, expected ${metrics.artifacts.weightsBytes})`,
      );
    }
    const json = parseJson<tf.io.ModelJSON>(modelJson.body, `${MODEL_FILE} of ${version}`);
    const described = topologyParams(json.modelTopology);
    if (described !== metrics.params) {
      throw new ModelIntegrityError(
        `${MODEL_FILE} of ${version} describes ${described} parameters; its metrics record ${metrics.params}`,
      );
    }
    const weightSpecs = json.weightsManifest?.flatMap((group) => group.weights) ?? [];
    const weightData = weights.body.buffer.slice(
      weights.body.byteOffset,
      weights.body.byteOffset + weights.body.byteLength,
    ) as ArrayBuffer;
    return {
      metrics,
      artifacts: {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        weightSpecs,
        weightData,
      },
    };
  }

  /**
   * A verified version as a ready model (an inference-only forward pass,
   * `inference-model.ts`); never returns a model built from mismatched files.
   * `beforeBuild` is awaited between verifying and building: a cold start
   * passes the tensor backend's start-up, which then overlaps the download
   * instead of preceding it.
   */
  async load(version: string, beforeBuild?: () => Promise<unknown>): Promise<LoadedModel> {
    const { metrics, artifacts } = await this.verify(version);
    await beforeBuild?.();
    try {
      // The model owns the decoded weights: disposed with it, or at once if it refuses the topology.
      const weights = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
      return { model: inferenceModel(artifacts.modelTopology, weights), metrics };
    } catch (error) {
      throw new ModelIntegrityError(`version ${version} could not be built: ${(error as Error).message}`);
    }
  }

  /** The serving pointer; throws PointerInvalidError when the stored one is malformed. */
  async latest(): Promise<LatestPointer | undefined> {
    const stored = await this.readPointer(undefined);
    return stored === 'unchanged' ? undefined : stored?.pointer;
  }

  /**
   * The pointer and its ETag: what a decision to promote is based on (see
   * `promote`'s `basedOn`). A malformed pointer is reported, not thrown, so a
   * promotion can replace it.
   */
  async pointerState(): Promise<PointerState> {
    const stored = await this.read(LATEST_KEY, POINTER_MAX_BYTES);
    if (!stored) return {};
    try {
      return { ...parsePointer(stored.body), etag: stored.etag };
    } catch (error) {
      if (!(error instanceof PointerInvalidError)) throw error;
      return { etag: stored.etag, invalid: error.message };
    }
  }

  /** The pointer unless it still has `etag` — a cheap re-check for long-running servers. */
  async latestIfChanged(
    etag: string | undefined,
  ): Promise<(ParsedPointer & { etag?: string }) | 'unchanged' | undefined> {
    return this.readPointer(etag);
  }

  private async readPointer(
    etag: string | undefined,
  ): Promise<(ParsedPointer & { etag?: string }) | 'unchanged' | undefined> {
    const stored = await this.read(LATEST_KEY, POINTER_MAX_BYTES, etag);
    if (stored === undefined || stored === 'unchanged') return stored;
    return { ...parsePointer(stored.body), etag: stored.etag };
  }

  /** The names of the versions that have metrics (complete ones, unless a file was damaged since), oldest first. */
  async versions(): Promise<string[]> {
    const keys = await this.objects.list(MODELS_PREFIX);
    return keys
      .filter((key) => key.endsWith(`/${METRICS_FILE}`))
      .map((key) => key.slice(MODELS_PREFIX.length, -METRICS_FILE.length - 1))
      .filter(isVersionName);
  }

  /** The metrics of every complete version, oldest first. */
  async allMetrics(): Promise<ModelMetrics[]> {
    const all = await Promise.all((await this.versions()).map((v) => this.metrics(v)));
    return all.filter((m): m is ModelMetrics => m !== undefined);
  }

  /** Complete versions, oldest first. */
  async list(): Promise<VersionSummary[]> {
    const [latest, all] = await Promise.all([this.latest(), this.allMetrics()]);
    return all.map((m) => ({
      version: m.version,
      arch: m.arch,
      ...(m.jobId ? { jobId: m.jobId } : {}),
      accuracy: m.test.accuracy,
      ...(typeof m.liveHoldout?.accuracy === 'number' ? { liveAccuracy: m.liveHoldout.accuracy } : {}),
      createdAt: m.createdAt,
      serving: m.version === latest?.version,
      ...(m.gate ? { gate: m.gate } : {}),
    }));
  }

  /**
   * Points `models/latest.json` at a verified version (promotion or rollback),
   * ending any candidate, and pinned only if `pin` says so. The pointer is the
   * only thing written, and only after verification, and only if it is still
   * the one `basedOn` read: otherwise PointerChangedError. Without `basedOn`
   * (an operator naming the version to serve) it reads the pointer itself and
   * retries a few times if another write lands in between.
   */
  async promote(version: string, options: WriteOptions & { forcedReason?: string; pin?: boolean } = {}) {
    const { metrics } = await this.verify(version);
    return this.update(options, `${version} was not promoted`, ({ pointer: current }) => ({
      version,
      promotedAt: (options.now ?? new Date()).toISOString(),
      accuracy: metrics.test.accuracy,
      arch: metrics.arch,
      ...(options.forcedReason ? { forced: { reason: options.forcedReason } } : {}),
      ...(current && current.version !== version ? { previous: current.version } : {}),
      ...(options.pin ? { pinned: true as const } : {}),
    }));
  }

  /**
   * Makes a verified version the candidate beside the serving one, which stays
   * as it is. Refused (409) when nothing serves or the version is the serving
   * one. `since` is when the version became the candidate: changing only its
   * mode or percent keeps it, so its evidence accumulates across the change.
   * Conditional and retried like `promote`.
   */
  async setCandidate(
    wanted: { version: string; mode: 'shadow' } | { version: string; mode: 'canary'; percent: number },
    options: WriteOptions = {},
  ): Promise<LatestPointer> {
    const { version } = wanted;
    await this.verify(version);
    if (wanted.mode === 'canary' && !isCanaryPercent(wanted.percent)) {
      throw new RangeError(`a canary's percent is a whole number from ${CANARY_PERCENT.min} to ${CANARY_PERCENT.max}`);
    }
    return this.update(options, `${version} was not made the candidate`, ({ pointer: current }) => {
      if (!current)
        throw new ConflictError(
          `no version is serving: promote one before trying ${version} beside it`,
          'no_serving_version',
        );
      if (current.version === version)
        throw new ConflictError(
          `${version} is the serving version; a candidate must be another one`,
          'candidate_is_serving',
        );
      const since =
        current.candidate?.version === version ? current.candidate.since : (options.now ?? new Date()).toISOString();
      return { ...current, candidate: { ...wanted, since } };
    });
  }

  /** Ends the shadow or canary, keeping the serving version; writes nothing when there is none. */
  async clearCandidate(options: WriteOptions = {}): Promise<LatestPointer> {
    return this.update(options, 'the candidate was not cleared', (basis) => {
      if (!basis.pointer)
        throw new ConflictError('no version is serving, so there is no candidate to clear', 'no_serving_version');
      const { candidate, ...pointer } = basis.pointer;
      return candidate || basis.candidateInvalid ? pointer : 'unchanged';
    });
  }

  /** Pins or unpins the serving version, keeping everything else; writes nothing when it already is. */
  async setPinned(pinned: boolean, options: WriteOptions = {}): Promise<LatestPointer> {
    return this.update(options, `the pointer was not ${pinned ? 'pinned' : 'unpinned'}`, (basis) => {
      if (!basis.pointer)
        throw new ConflictError(
          `no version is serving, so there is nothing to ${pinned ? 'pin' : 'unpin'}`,
          'no_serving_version',
        );
      const { pinned: was, ...pointer } = basis.pointer;
      if (Boolean(was) === pinned) return 'unchanged';
      return pinned ? { ...pointer, pinned: true } : pointer;
    });
  }

  /** The pointer's changes, oldest first (see `audit.ts`); a record that cannot be read is listed with its problem. */
  async history(): Promise<(AuditRecord | { key: string; problem: string })[]> {
    const keys = (await this.objects.list(AUDIT_PREFIX)).sort();
    return Promise.all(
      keys.map(async (key) => {
        try {
          const stored = await this.objects.get(key, { maxBytes: AUDIT_RECORD_MAX_BYTES });
          if (!stored) return { key, problem: 'was deleted while the history was read' };
          const record = parseAuditRecord(stored.body);
          return 'problem' in record ? { key, problem: record.problem } : record;
        } catch (error) {
          if (error instanceof ObjectTooLargeError) return { key, problem: error.message };
          throw error;
        }
      }),
    );
  }

  /** One conditional write of the pointer, built from its basis; without `basedOn`, re-read and retried on a race. */
  private async update(
    options: WriteOptions,
    notDone: string,
    next: (basis: PointerState) => LatestPointer | 'unchanged',
  ): Promise<LatestPointer> {
    const { basedOn } = options;
    const reason = options.by?.reason;
    if (reason !== undefined && (reason.length === 0 || reason.length > AUDIT_REASON_MAX_CHARS))
      throw new RangeError(`a reason is 1 to ${AUDIT_REASON_MAX_CHARS} characters`);
    // A caller's own basis is written back even unchanged: the write is what confirms it is still current.
    if (basedOn) {
      const pointer = next(basedOn);
      return this.writePointer(basedOn, pointer === 'unchanged' ? basedOn.pointer! : pointer, notDone, options);
    }
    for (let attempt = 1; ; attempt++) {
      const basis = await this.pointerState();
      try {
        return await this.writePointer(basis, next(basis), notDone, options);
      } catch (error) {
        if (!(error instanceof PointerChangedError) || attempt >= PROMOTE_ATTEMPTS) throw error;
      }
    }
  }

  private async writePointer(
    basis: PointerState,
    next: LatestPointer | 'unchanged',
    notDone: string,
    options: WriteOptions,
  ): Promise<LatestPointer> {
    if (next === 'unchanged') return basis.pointer!;
    const now = options.now ?? new Date();
    const changed = next !== basis.pointer;
    const pointer = changed ? { ...next, changedAt: now.toISOString() } : next;
    try {
      await this.objects.put(
        LATEST_KEY,
        JSON.stringify(pointer),
        'application/json',
        basis.etag ? { ifMatch: basis.etag } : { ifNoneMatch: '*' },
      );
    } catch (error) {
      if (!(error instanceof WriteConflictError)) throw error;
      const was = basis.pointer ? `it pointed at ${basis.pointer.version}` : 'there was none';
      throw new PointerChangedError(`the serving pointer changed after it was read (${was}); ${notDone}`);
    }
    if (!changed) return pointer;
    // After the pointer, never before: a record always describes a change that happened.
    const record = auditRecord(basis.pointer, pointer, options.by ?? { actor: 'operator' }, now);
    try {
      await this.objects.put(auditKey(now), JSON.stringify(record), 'application/json');
    } catch (error) {
      throw new Error(
        `the pointer now serves ${pointer.version}, but its audit record could not be written: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return pointer;
  }
}
