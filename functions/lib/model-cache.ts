/**
 * The serving model, cached for the life of the process (a Lambda container,
 * the local server). The first request loads the promoted version; requests
 * that arrive meanwhile share that one load. Afterwards the pointer is
 * re-checked (by ETag) at most every `refreshSeconds`, in the background, and
 * a newly promoted version replaces the old one only once it has loaded and
 * verified. A version that fails to load never replaces a working one; a
 * cold process whose promoted version fails serves the pointer's `previous`
 * instead, if that one verifies, and says so (`fallback`).
 *
 * The pointer's candidate (shadow or canary) is held beside the serving model.
 * It is loaded in the background once the serving model is in place, with the
 * same verification, and never delays an answer: until it has loaded, and for
 * good if it fails to, requests are served as if there were none.
 */
import type { InferenceModel } from './inference-model.ts';
import { PointerInvalidError, UnavailableError } from './errors.ts';
import type { Logger } from './log.ts';
import {
  LATEST_KEY,
  type Candidate,
  type LatestPointer,
  type LoadedModel,
  type ModelMetrics,
  type ModelStore,
} from './storage/store.ts';

/** The pointer's candidate with its loaded model. */
export type CandidateModel = Candidate & { model: InferenceModel; metrics: ModelMetrics };

export interface ServingModel {
  version: string;
  model: InferenceModel;
  metrics: ModelMetrics;
  pointer: LatestPointer;
  /** Set when this is the pointer's `previous`, served because the promoted version would not load. */
  fallback?: { from: string; reason: string };
  /** The pointer's candidate, once it has loaded. */
  candidate?: CandidateModel;
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

const unloadable = (version: string) =>
  new UnavailableError(
    `the promoted model ${version} could not be loaded; promote a working version`,
    'model_unloadable',
    30,
  );

export class ModelCache {
  private serving: ServingModel | undefined;
  private etag: string | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  /** A version that failed to load is not retried until the pointer changes again. */
  private rejected: string | undefined;
  /** The candidate the last pointer read names, and the loaded model of one (the same once its load ends). */
  private wantedCandidate: Candidate | undefined;
  private loadedCandidate: LoadedModel | undefined;
  private loadingCandidate: string | undefined;
  private readonly candidateLoads = new Set<Promise<void>>();
  /** A candidate that failed to load is not retried until the pointer names another one, or none. */
  private rejectedCandidate: string | undefined;
  private readonly now: () => number;

  constructor(private readonly options: ModelCacheOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The serving model, loading it first if needed; throws UnavailableError when there is none. */
  async get(): Promise<ServingModel> {
    if (this.serving) {
      // Nobody awaits a background refresh, so its failure must end here, never as an unhandled rejection.
      if (this.refreshDue())
        this.refresh().catch((error: unknown) =>
          this.options.logger.error('background model refresh failed', { error }),
        );
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

  /** Where the pointer's candidate stands in this process, for /health and /model; undefined when it names none. */
  candidateState(): 'loading' | 'ready' | 'failed' | undefined {
    const wanted = this.wantedCandidate?.version;
    if (wanted === undefined) return undefined;
    if (this.serving?.candidate?.version === wanted) return 'ready';
    return wanted === this.rejectedCandidate ? 'failed' : 'loading';
  }

  /** Resolves once every candidate load started so far has ended, loaded or failed. */
  async candidateSettled(): Promise<void> {
    await Promise.all(this.candidateLoads);
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
      const invalid = error instanceof PointerInvalidError;
      logger.error(invalid ? 'the model pointer is invalid' : 'could not read the model pointer', {
        error,
        modelVersion: this.serving?.version,
      });
      if (this.serving) return;
      if (invalid)
        throw new UnavailableError(
          `${LATEST_KEY} is invalid (${error.message}); promote a version to repair it`,
          'pointer_invalid',
          30,
        );
      throw new UnavailableError(
        'model storage is unreachable; try again shortly',
        'storage_unavailable',
        this.options.retryAfterSeconds ?? 5,
      );
    }
    this.lastCheck = this.now();
    if (latest === undefined || latest === 'unchanged') return;
    const { pointer, etag, candidateInvalid } = latest;
    this.etag = etag;
    if (candidateInvalid)
      logger.error('the candidate in the model pointer is invalid; serving without one', {
        problem: candidateInvalid,
        modelVersion: pointer.version,
      });
    await this.serve(pointer);
    this.followCandidate(pointer.candidate);
  }

  private async serve(pointer: LatestPointer): Promise<void> {
    const { store, logger } = this.options;
    if (this.serving && pointer.version === this.serving.version) {
      // Re-promoted (e.g. a rollback to the version a fallback is serving): it is now served as promoted.
      const { fallback: _, ...serving } = this.serving;
      this.serving = { ...serving, pointer };
      return;
    }
    if (pointer.version === this.rejected) {
      if (!this.serving) throw unloadable(pointer.version);
      return;
    }
    try {
      this.replace(pointer, await store.load(pointer.version, this.options.backendReady));
    } catch (error) {
      this.rejected = pointer.version;
      if (this.serving) {
        logger.error('promoted model failed to load; keeping the current one', {
          error,
          failedVersion: pointer.version,
          modelVersion: this.serving.version,
        });
      } else if (!(await this.fallBack(pointer, error))) {
        throw unloadable(pointer.version);
      }
    }
  }

  /**
   * Makes the loaded candidate match the pointer's: drops one it no longer
   * names, starts loading a new one in the background. Called only once the
   * serving model for that pointer is settled, so a candidate never delays it.
   */
  private followCandidate(wanted: Candidate | undefined): void {
    this.wantedCandidate = wanted;
    if (wanted?.version !== this.rejectedCandidate) this.rejectedCandidate = undefined;
    const loaded = this.loadedCandidate;
    if (loaded && loaded.metrics.version !== wanted?.version) {
      this.loadedCandidate = undefined;
      loaded.model.dispose();
      this.options.logger.info('candidate dropped', { candidateVersion: loaded.metrics.version });
    }
    const needed = wanted && !this.loadedCandidate && wanted.version !== this.rejectedCandidate;
    if (needed && wanted.version !== this.loadingCandidate) this.loadCandidate(wanted.version);
    this.publish();
  }

  private loadCandidate(version: string): void {
    const { store, logger } = this.options;
    this.loadingCandidate = version;
    const loading = store.load(version, this.options.backendReady).then(
      (loaded) => {
        if (this.loadingCandidate === version) this.loadingCandidate = undefined;
        // The pointer may have moved on while it loaded.
        if (this.wantedCandidate?.version !== version || this.loadedCandidate) {
          loaded.model.dispose();
          return;
        }
        this.loadedCandidate = loaded;
        this.publish();
        logger.info('candidate loaded', { candidateVersion: version, modelVersion: this.serving?.version });
      },
      (error: unknown) => {
        if (this.loadingCandidate === version) this.loadingCandidate = undefined;
        if (this.wantedCandidate?.version === version) this.rejectedCandidate = version;
        logger.error('candidate failed to load; serving without it', {
          error,
          candidateVersion: version,
          modelVersion: this.serving?.version,
        });
      },
    );
    this.candidateLoads.add(loading);
    loading.finally(() => this.candidateLoads.delete(loading));
  }

  /** The snapshot requests see: the serving model with the candidate, when the one the pointer names has loaded. */
  private publish(): void {
    if (!this.serving) return;
    const { candidate: _, ...serving } = this.serving;
    const wanted = this.wantedCandidate;
    const loaded = this.loadedCandidate;
    // A candidate equal to what serves (a fallback to it) would only compare the model with itself.
    const usable = wanted && loaded?.metrics.version === wanted.version && wanted.version !== serving.version;
    this.serving = usable
      ? { ...serving, candidate: { ...wanted, model: loaded.model, metrics: loaded.metrics } }
      : serving;
  }

  private replace(pointer: LatestPointer, loaded: LoadedModel, fallback?: ServingModel['fallback']): void {
    const previous = this.serving;
    this.serving = { version: loaded.metrics.version, ...loaded, pointer, ...(fallback ? { fallback } : {}) };
    this.rejected = fallback?.from;
    previous?.model.dispose();
    this.options.logger.info('model loaded', {
      modelVersion: loaded.metrics.version,
      previous: previous?.version,
      accuracy: loaded.metrics.test.accuracy,
    });
  }

  /** Cold, with a promoted version that will not load: serve the pointer's `previous` if it verifies. */
  private async fallBack(pointer: LatestPointer, failure: unknown): Promise<boolean> {
    const { store, logger } = this.options;
    const reason = (failure as Error).message;
    const previous = pointer.previous;
    if (previous === undefined || previous === pointer.version) {
      logger.error('promoted model failed to load and there is no previous version to fall back to', {
        error: failure,
        failedVersion: pointer.version,
      });
      return false;
    }
    try {
      this.replace(pointer, await store.load(previous, this.options.backendReady), { from: pointer.version, reason });
    } catch (error) {
      logger.error('promoted model failed to load, and so did the previous version', {
        error: failure,
        failedVersion: pointer.version,
        previous,
        previousError: error,
      });
      return false;
    }
    logger.error('promoted model failed to load; SERVING THE PREVIOUS VERSION instead', {
      error: failure,
      failedVersion: pointer.version,
      modelVersion: previous,
      fallback: true,
    });
    return true;
  }
}
