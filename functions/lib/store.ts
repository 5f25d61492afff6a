/**
 * ModelStore: model versions in one bucket, as laid out in DESIGN.md.
 *
 *   models/<version>/weights.bin, model.json, metrics.json (written in that order)
 *   models/latest.json  {"version", "promotedAt", "accuracy", ...}
 *
 * metrics.json is written last and records the checksums of the other two, so
 * a version is complete exactly when its metrics.json exists and matches.
 * Promotion is one write of latest.json, made only after the version has been
 * read back and verified; rollback is the same write with an older version.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ModelIntegrityError } from './errors.ts';
import type { Evaluation } from './evaluate.ts';
import type { Arch } from './model.ts';
import type { Schedule, TrainResult } from './train-loop.ts';
import type { ObjectStore } from './objects.ts';

export const MODELS_PREFIX = 'models/';
export const LATEST_KEY = 'models/latest.json';
const WEIGHTS_FILE = 'weights.bin';
const MODEL_FILE = 'model.json';
const METRICS_FILE = 'metrics.json';

/** e.g. 20261125T220000Z-mlp: sorts by time and names its architecture. */
const VERSION_PATTERN = /^\d{8}T\d{6}Z-[a-z0-9]+$/;

export function versionName(arch: Arch, at: Date): string {
  return at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z') + '-' + arch;
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
    seed: number;
    history: TrainResult['history'];
  };
  test: Evaluation;
  /** The quality gate's decision when the version was trained, against the model serving then. */
  gate?: GateDecision;
  artifacts: { weightsBytes: number; weightsSha256: string; modelJsonSha256: string };
}

export type MetricsInput = Omit<ModelMetrics, 'artifacts'>;

export interface LatestPointer {
  version: string;
  promotedAt: string;
  accuracy: number;
  arch: Arch;
  /** Set when the quality gate was overridden, with the operator's reason. */
  forced?: { reason: string };
  previous?: string;
}

export interface VersionSummary {
  version: string;
  arch: Arch;
  jobId?: string;
  accuracy: number;
  createdAt: string;
  serving: boolean;
  gate?: GateDecision;
}

export interface LoadedModel {
  model: tfl.LayersModel;
  metrics: ModelMetrics;
}

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

function versionKey(version: string, file: string): string {
  if (!isVersionName(version)) throw new ModelIntegrityError(`"${version}" is not a model version name`);
  return `${MODELS_PREFIX}${version}/${file}`;
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new ModelIntegrityError(`${what} is not valid JSON`);
  }
}

export class ModelStore {
  constructor(private readonly objects: ObjectStore) {}

  /**
   * Writes a new, immutable version: weights, topology, then metrics with the
   * checksums of both, and reads all three back before returning.
   */
  async save(model: tfl.LayersModel, input: MetricsInput): Promise<ModelMetrics> {
    const { version } = input;
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
          artifacts: { weightsBytes: weights.byteLength, weightsSha256: sha256(weights), modelJsonSha256: sha256(modelJson) },
        };
        await this.objects.put(versionKey(version, WEIGHTS_FILE), weights);
        await this.objects.put(versionKey(version, MODEL_FILE), modelJson, 'application/json');
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

  async attachment(version: string, file: string): Promise<Buffer | undefined> {
    return (await this.objects.get(versionKey(version, file)))?.body;
  }

  async metrics(version: string): Promise<ModelMetrics | undefined> {
    const stored = await this.objects.get(versionKey(version, METRICS_FILE));
    return stored && parseJson<ModelMetrics>(stored.body, `metrics of ${version}`);
  }

  /** Reads a version's artifacts and checks them against the checksums in its metrics. */
  async verify(version: string): Promise<{ metrics: ModelMetrics; artifacts: tf.io.ModelArtifacts }> {
    // Keys first: a bad version name throws before any request is in flight.
    const modelKey = versionKey(version, MODEL_FILE);
    const weightsKey = versionKey(version, WEIGHTS_FILE);
    // All three at once: a cold start waits for one round trip to storage instead of two.
    const [metrics, modelJson, weights] = await Promise.all([this.metrics(version), this.objects.get(modelKey), this.objects.get(weightsKey)]);
    if (!metrics) throw new ModelIntegrityError(`version ${version} is missing or incomplete (no ${METRICS_FILE})`);
    if (!modelJson || !weights) throw new ModelIntegrityError(`version ${version} is missing ${!modelJson ? MODEL_FILE : WEIGHTS_FILE}`);
    if (sha256(modelJson.body) !== metrics.artifacts.modelJsonSha256) {
      throw new ModelIntegrityError(`${MODEL_FILE} of ${version} does not match its recorded checksum`);
    }
    if (weights.body.byteLength !== metrics.artifacts.weightsBytes || sha256(weights.body) !== metrics.artifacts.weightsSha256) {
      throw new ModelIntegrityError(
        `${WEIGHTS_FILE} of ${version} does not match its recorded checksum (${weights.body.byteLength} bytes, expected ${metrics.artifacts.weightsBytes})`,
      );
    }
    const json = parseJson<tf.io.ModelJSON>(modelJson.body, `${MODEL_FILE} of ${version}`);
    const weightSpecs = json.weightsManifest?.flatMap((group) => group.weights) ?? [];
    const weightData = weights.body.buffer.slice(weights.body.byteOffset, weights.body.byteOffset + weights.body.byteLength) as ArrayBuffer;
    return {
      metrics,
      artifacts: { modelTopology: json.modelTopology, format: json.format, generatedBy: json.generatedBy, weightSpecs, weightData },
    };
  }

  /**
   * A verified version as a ready model; never returns a model built from
   * mismatched files. `beforeBuild` is awaited between verifying and
   * building: a cold start passes the tensor backend's start-up, which then
   * overlaps the download instead of preceding it.
   */
  async load(version: string, beforeBuild?: () => Promise<unknown>): Promise<LoadedModel> {
    const { metrics, artifacts } = await this.verify(version);
    await beforeBuild?.();
    try {
      const model = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
      return { model, metrics };
    } catch (error) {
      throw new ModelIntegrityError(`version ${version} could not be built: ${(error as Error).message}`);
    }
  }

  async latest(): Promise<LatestPointer | undefined> {
    const stored = await this.objects.get(LATEST_KEY);
    return stored && parseJson<LatestPointer>(stored.body, LATEST_KEY);
  }

  /** The pointer unless it still has `etag` — a cheap re-check for long-running servers. */
  async latestIfChanged(etag: string | undefined): Promise<{ pointer: LatestPointer; etag?: string } | 'unchanged' | undefined> {
    const stored = await this.objects.getIfChanged(LATEST_KEY, etag);
    if (stored === undefined || stored === 'unchanged') return stored;
    return { pointer: parseJson<LatestPointer>(stored.body, LATEST_KEY), etag: stored.etag };
  }

  /** The metrics of every complete version, oldest first. */
  async allMetrics(): Promise<ModelMetrics[]> {
    const keys = await this.objects.list(MODELS_PREFIX);
    const versions = keys
      .filter((key) => key.endsWith('/' + METRICS_FILE))
      .map((key) => key.slice(MODELS_PREFIX.length, -METRICS_FILE.length - 1))
      .filter(isVersionName);
    const all = await Promise.all(versions.map((v) => this.metrics(v)));
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
      createdAt: m.createdAt,
      serving: m.version === latest?.version,
      ...(m.gate ? { gate: m.gate } : {}),
    }));
  }

  /**
   * Points `models/latest.json` at a verified version (promotion or rollback).
   * The pointer is the only thing written, and only after verification.
   */
  async promote(version: string, options: { forcedReason?: string; now?: Date } = {}): Promise<LatestPointer> {
    const { metrics } = await this.verify(version);
    const current = await this.latest();
    const pointer: LatestPointer = {
      version,
      promotedAt: (options.now ?? new Date()).toISOString(),
      accuracy: metrics.test.accuracy,
      arch: metrics.arch,
      ...(options.forcedReason ? { forced: { reason: options.forcedReason } } : {}),
      ...(current && current.version !== version ? { previous: current.version } : {}),
    };
    await this.objects.put(LATEST_KEY, JSON.stringify(pointer), 'application/json');
    return pointer;
  }
}

/** Default minimum test accuracy per architecture (DESIGN.md, "Quality gate"). */
export const MIN_ACCURACY: Record<Arch, number> = { mlp: 0.975, cnn: 0.99 };
/** A candidate may be at most this much (0.2 points) below the serving model. */
export const MAX_REGRESSION = 0.002;

export interface GateDecision {
  passed: boolean;
  reasons: string[];
}

/** The quality gate as a pure function: every rule that fails is named. */
export function qualityGate(
  candidate: { arch: Arch; accuracy: number },
  current: { accuracy: number; version: string } | undefined,
  minAccuracy: number = MIN_ACCURACY[candidate.arch],
): GateDecision {
  const reasons: string[] = [];
  const pct = (x: number) => (x * 100).toFixed(2) + '%';
  if (!(candidate.accuracy >= minAccuracy)) {
    reasons.push(`test accuracy ${pct(candidate.accuracy)} is below the minimum ${pct(minAccuracy)} for ${candidate.arch}`);
  }
  if (current && candidate.accuracy < current.accuracy - MAX_REGRESSION - 1e-12) {
    reasons.push(
      `test accuracy ${pct(candidate.accuracy)} is more than 0.2 points below the serving model ${current.version} (${pct(current.accuracy)})`,
    );
  }
  return { passed: reasons.length === 0, reasons };
}
