/**
 * The serving model, cached for the life of the process (a Lambda container,
 * the local server). The first request loads the promoted version; requests
 * that arrive meanwhile share that one load. Afterwards the pointer is
 * re-checked (by ETag) at most every `refreshSeconds`, in the background, and
 * a newly promoted version replaces the old one only once it has loaded and
 * verified. A version that fails to load never replaces a working one.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { UnavailableError } from './errors.ts';
import type { Logger } from './log.ts';
import type { LatestPointer, ModelMetrics, ModelStore } from './store.ts';

export interface ServingModel {
  version: string;
  model: tfl.LayersModel;
  metrics: ModelMetrics;
  pointer: LatestPointer;
}

export interface ModelCacheOptions {
  store: ModelStore;
  refreshSeconds: number;
  logger: Logger;
  now?: () => number;
  /** Told to callers in Retry-After when storage cannot be reached. */
  retryAfterSeconds?: number;
  /** Resolves once models can be built (the tensor backend); awaited after a version's download. */
  backendReady?: () => Promise<unknown>;
}

export const NO_MODEL_MESSAGE =
  'no model has been promoted yet: train one with `npm run train` (locally) or `npm run retrain` (deployed), then try again';

export class ModelCache {
  private serving: ServingModel | undefined;
  private etag: string | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  /** A version that failed to load is not retried until the pointer changes again. */
  private rejected: string | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ModelCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The serving model, loading it first if needed; throws UnavailableError when there is none. */
  async get(): Promise<ServingModel> {
    if (this.serving) {
      if (this.refreshDue()) void this.refresh();
      return this.serving;
    }
    await this.refresh();
    if (!this.serving) throw new UnavailableError(NO_MODEL_MESSAGE, 'no_model');
    return this.serving;
  }

  /** The serving model if one is loaded; never triggers a load. */
  peek(): ServingModel | undefined {
    return this.serving;
  }

  private refreshDue(): boolean {
    return this.now() - this.lastCheck >= this.options.refreshSeconds * 1000;
  }

  /** One pointer check and (if it moved) one load at a time, shared by every caller. */
  refresh(): Promise<void> {
    this.inFlight ??= this.check().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async check(): Promise<void> {
    const { store, logger } = this.options;
    let latest: Awaited<ReturnType<ModelStore['latestIfChanged']>>;
    try {
      latest = await store.latestIfChanged(this.serving ? this.etag : undefined);
    } catch (error) {
      logger.error('could not read the model pointer', { error });
      if (this.serving) return;
      throw new UnavailableError('model storage is unreachable; try again shortly', 'storage_unavailable', this.options.retryAfterSeconds ?? 5);
    }
    this.lastCheck = this.now();
    if (latest === undefined || latest === 'unchanged') return;
    const { pointer, etag } = latest;
    if (pointer.version === this.serving?.version || pointer.version === this.rejected) {
      this.etag = etag;
      return;
    }
    try {
      const { model, metrics } = await store.load(pointer.version, this.options.backendReady);
      const previous = this.serving;
      this.serving = { version: pointer.version, model, metrics, pointer };
      this.etag = etag;
      this.rejected = undefined;
      previous?.model.dispose();
      logger.info('model loaded', { modelVersion: pointer.version, previous: previous?.version, accuracy: metrics.test.accuracy });
    } catch (error) {
      this.etag = etag;
      this.rejected = pointer.version;
      logger.error('promoted model failed to load; keeping the current one', {
        error,
        failedVersion: pointer.version,
        modelVersion: this.serving?.version,
      });
      if (!this.serving) {
        throw new UnavailableError(`the promoted model ${pointer.version} could not be loaded; promote a working version`, 'model_unloadable', 30);
      }
    }
  }
}
