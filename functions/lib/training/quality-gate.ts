/**
 * The quality gate: whether a newly trained version may replace the serving
 * one. Policy, not storage: a pure function of the two versions' test
 * accuracy, used by the training job and by `npm start`.
 */
import type { Arch } from './model.ts';

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
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
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
  return { passed: reasons.length === 0, reasons };
}
