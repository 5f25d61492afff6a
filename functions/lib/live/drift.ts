/**
 * Input drift: how far recent inputs have moved from what a version was
 * trained and tested on, per feature of their profile (`profile.ts`), as the
 * population stability index. Pure: the profiles are read and the result is
 * stored elsewhere (`stored.ts`).
 *
 * PSI = Σ (recent − reference) · ln(recent / reference) over the bins' shares.
 * It reads the same whatever the sample sizes, is zero for identical
 * histograms, and has a conventional reading that needs no calibration here:
 * under 0.1 no change, 0.1 to 0.25 moderate, over 0.25 significant.
 */
import { FEATURES, type Feature, type Profile, profileOf, type ProfileSample } from './profile.ts';

/** An empty bin's share: a bin empty on one side contributes a large but finite term, never ∞. */
export const PSI_EPSILON = 1e-4;
/** The conventional reading of a PSI. */
export const PSI_MODERATE = 0.1;
export const PSI_SIGNIFICANT = 0.25;

/**
 * The window compared, the score that raises the alarm, and the fewest
 * captures worth a score. Below 200 the sampling noise alone of a 10-bin
 * histogram is about 9/n ≈ 0.05 of PSI, half of the "no change" bound, so a
 * score from fewer would be mostly noise.
 */
export const DRIFT_DEFAULTS = { windowDays: 7, threshold: PSI_SIGNIFICANT, minSamples: 200 } as const;

export const DRIFT_LEVELS = ['none', 'moderate', 'significant', 'not enough data', 'no reference profile'] as const;
export type DriftLevel = (typeof DRIFT_LEVELS)[number];

export interface DriftOptions {
  /** The overall score above which `alarm` is set. */
  threshold: number;
  minSamples: number;
}

export interface Drift {
  level: DriftLevel;
  /** The largest feature PSI; null when not measured. */
  score: number | null;
  /** PSI per feature; null when not measured. */
  features: Record<Feature, number> | null;
  /** Recent inputs compared (those in the window). */
  samples: number;
  /** The window's start, ISO time. */
  since: string;
  threshold: number;
  /** score > threshold. */
  alarm: boolean;
  /** Why there is no reference to compare with (level "no reference profile"). */
  reference?: string;
}

/** PSI between two histograms of counts over the same bins; throws when their bins differ or either is empty. */
export function psi(reference: readonly number[], recent: readonly number[]): number {
  if (reference.length !== recent.length || reference.length === 0)
    throw new RangeError(`histograms of ${reference.length} and ${recent.length} bins cannot be compared`);
  const total = (counts: readonly number[]) => counts.reduce((a, b) => a + b, 0);
  const [referenceTotal, recentTotal] = [total(reference), total(recent)];
  if (referenceTotal <= 0 || recentTotal <= 0) throw new RangeError('an empty histogram has no shares to compare');
  let sum = 0;
  for (let i = 0; i < reference.length; i++) {
    const expected = Math.max(PSI_EPSILON, reference[i]! / referenceTotal);
    const actual = Math.max(PSI_EPSILON, recent[i]! / recentTotal);
    sum += (actual - expected) * Math.log(actual / expected);
  }
  return sum;
}

export function psiLevel(score: number): 'none' | 'moderate' | 'significant' {
  return score > PSI_SIGNIFICANT ? 'significant' : score >= PSI_MODERATE ? 'moderate' : 'none';
}

/**
 * Recent inputs against a version's reference profile. The overall score is
 * the largest feature PSI, not a mean: one feature moving (thicker pens, say)
 * is the news, and averaging it with seven that did not would hide it.
 */
export function driftOf(
  reference: Profile | { problem: string },
  recent: readonly ProfileSample[],
  since: Date,
  options: DriftOptions,
): Drift {
  const base = { samples: recent.length, since: since.toISOString(), threshold: options.threshold, alarm: false };
  const unmeasured = { score: null, features: null };
  if ('problem' in reference)
    return { level: 'no reference profile', ...unmeasured, ...base, reference: reference.problem };
  if (reference.count === 0)
    return { level: 'no reference profile', ...unmeasured, ...base, reference: 'the profile holds no inputs' };
  if (recent.length < options.minSamples) return { level: 'not enough data', ...unmeasured, ...base };
  const profile = profileOf(recent);
  const features = Object.fromEntries(
    FEATURES.map((f) => [f, psi(reference.features[f], profile.features[f])]),
  ) as Record<Feature, number>;
  const score = Math.max(...Object.values(features));
  return { level: psiLevel(score), score, features, ...base, alarm: score > options.threshold };
}

/** What a metric publishes of a drift result: the score and each feature's PSI, or undefined when not measured. */
export function driftScore(drift: Drift | undefined): { score: number; features: Record<Feature, number> } | undefined {
  if (!drift || drift.score === null || drift.features === null) return undefined;
  return { score: drift.score, features: drift.features };
}
