/**
 * The quality gate: whether a newly trained version may replace the serving
 * one. Policy, not storage: a pure function of the two versions' test
 * accuracy (and, when users have labelled captures, their accuracy on the
 * live holdout), used by the training job and by `npm start`.
 */
import type { Arch } from './model.ts';

/** Default minimum test accuracy per architecture (DESIGN.md, "Quality gate"). */
export const MIN_ACCURACY: Record<Arch, number> = { mlp: 0.975, cnn: 0.99 };
/** A candidate may be at most this much (0.2 points) below the serving model. */
export const MAX_REGRESSION = 0.002;
/** On the live holdout, a candidate may be at most this much (1 point) below the serving model (MAX_LIVE_REGRESSION). */
export const MAX_LIVE_REGRESSION = 0.01;
/**
 * Below this many images the live-holdout rule is skipped: one image of 50 is
 * already 2 points, so a smaller holdout would refuse or pass on noise.
 */
export const MIN_LIVE_HOLDOUT = 50;

export interface GateDecision {
  passed: boolean;
  /** Every rule that refused, in words. */
  reasons: string[];
  /** Rules that could not be applied and why (e.g. a live holdout too small to judge); absent when none. */
  notes?: string[];
}

export interface GateCandidate {
  arch: Arch;
  accuracy: number;
  /** Accuracy on the live holdout, when users have labelled any captures. */
  live?: { count: number; accuracy: number };
}

export interface GateCurrent {
  accuracy: number;
  version: string;
  /** The serving version's accuracy on the same live holdout as the candidate's. */
  liveAccuracy?: number;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
function points(x: number): string {
  const n = Number((x * 100).toFixed(2));
  return `${n} ${n === 1 ? 'point' : 'points'}`;
}

/** The quality gate as a pure function: every rule that fails is named, every rule skipped is noted. */
export function qualityGate(
  candidate: GateCandidate,
  current: GateCurrent | undefined,
  minAccuracy: number = MIN_ACCURACY[candidate.arch],
  maxLiveRegression: number = MAX_LIVE_REGRESSION,
): GateDecision {
  const reasons: string[] = [];
  const notes: string[] = [];
  if (!(candidate.accuracy >= minAccuracy)) {
    reasons.push(
      `test accuracy ${pct(candidate.accuracy)} is below the minimum ${pct(minAccuracy)} for ${candidate.arch}`,
    );
  }
  if (current && candidate.accuracy < current.accuracy - MAX_REGRESSION - 1e-12) {
    reasons.push(
      `test accuracy ${pct(candidate.accuracy)} is more than 0.2 points below the serving model ${current.version} (${pct(current.accuracy)})`,
    );
  }
  const { live } = candidate;
  if (live && current) {
    if (live.count < MIN_LIVE_HOLDOUT) {
      notes.push(
        `live holdout of ${live.count} too small to judge (at least ${MIN_LIVE_HOLDOUT} needed); rule skipped`,
      );
    } else if (current.liveAccuracy === undefined) {
      notes.push(`the serving model ${current.version} could not be scored on the live holdout; rule skipped`);
    } else if (!(live.accuracy >= current.liveAccuracy - maxLiveRegression - 1e-12)) {
      reasons.push(
        `live-holdout accuracy ${pct(live.accuracy)} is more than ${points(maxLiveRegression)} below the serving model ${current.version} (${pct(current.liveAccuracy)}) on the same ${live.count} images`,
      );
    }
  }
  return { passed: reasons.length === 0, reasons, ...(notes.length > 0 ? { notes } : {}) };
}
