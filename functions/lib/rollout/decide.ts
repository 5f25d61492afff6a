/**
 * The rollout policy as a pure function: from what the service knows now (the
 * pointer, the candidate's and serving version's figures on the same
 * traffic, the alarms) to one decision — promote the candidate, roll back,
 * or wait — with the reason a person would give. No I/O: the scheduled
 * function (and `npm start`'s timer) read the inputs, call this, and make the
 * pointer write conditional on what they read.
 */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

export interface RolloutPolicy {
  /** Captured predictions the pair must share before anything is judged. */
  minSamples: number;
  /** Labelled predictions (feedback) the pair must share before accuracy is judged. */
  minLabelled: number;
  /** The share of inputs on which both versions must give the same digit to promote without labels saying otherwise. */
  minAgreement: number;
  /** How far (0–1) the candidate's accuracy on the shared labelled inputs may fall below the serving version's. */
  tolerance: number;
  /** No automatic change this soon after the last pointer change. */
  coolDownMinutes: number;
  /** How long a newly promoted version is watched for a rollback to the one before it. */
  watchMinutes: number;
}

export const DEFAULT_POLICY: RolloutPolicy = {
  minSamples: 500,
  minLabelled: 50,
  minAgreement: 0.97,
  tolerance: 0.01,
  coolDownMinutes: 30,
  watchMinutes: 24 * 60,
};

export interface PointerState {
  serving: string;
  /** What `serving` replaced: the version a rollback returns to. */
  previous?: string;
  /** When the pointer last changed (promotion, candidate set or cleared). */
  changedAt: string;
  /** An operator's pin: no automatic decision touches this pointer. */
  pinned?: boolean;
  candidate?: { version: string; mode: 'shadow' | 'canary'; percent?: number; since: string };
}

/** Both versions scored on the same captured inputs (the candidate ran beside the serving one). */
export interface PairFigures {
  samples: number;
  /** Share of `samples` with the same digit from both. */
  agreement: number;
  /** Inputs with feedback, and each version's accuracy on them. */
  labelled: number;
  candidateAccuracy: number | null;
  servingAccuracy: number | null;
}

/** An alarm and, when it watches one version (low confidence, live accuracy), which. */
export interface Alarm {
  name: string;
  state: AlarmState;
  version?: string;
}

export interface DecisionInput {
  now: Date;
  pointer: PointerState;
  /** The pair's figures when a candidate is set; undefined before any shared capture. */
  pair?: PairFigures;
  alarms: readonly Alarm[];
  policy: RolloutPolicy;
}

export type Decision =
  | { action: 'promote'; version: string; reason: string }
  | { action: 'drop-candidate'; version: string; reason: string }
  | { action: 'rollback'; from: string; to: string; reason: string }
  | { action: 'wait'; reason: string };

const minutesSince = (now: Date, iso: string) => (now.getTime() - Date.parse(iso)) / 60_000;
const pct = (share: number) => `${(share * 100).toFixed(1)}%`;

/** Alarms in ALARM that concern `version`: its own, or the service's when it answers traffic. */
function firing(alarms: readonly Alarm[], version: string, servesTraffic: boolean): Alarm[] {
  return alarms.filter(
    (a) => a.state === 'ALARM' && (a.version === version || (a.version === undefined && servesTraffic)),
  );
}

function judgeCandidate(input: DecisionInput, candidate: NonNullable<PointerState['candidate']>): Decision {
  const { pair, policy, pointer, alarms } = input;
  const version = candidate.version;
  // A canary answers callers, so the service's own alarms count against it; a shadow answers nobody.
  const canary = candidate.mode === 'canary';
  const against = firing(alarms, version, canary);
  if (against.length > 0) {
    return {
      action: 'drop-candidate',
      version,
      reason: `${against.map((a) => a.name).join(', ')} in ALARM while ${version} was the ${candidate.mode} candidate`,
    };
  }
  if (!pair || pair.samples < policy.minSamples) {
    return { action: 'wait', reason: `${pair?.samples ?? 0} of ${policy.minSamples} shared predictions so far` };
  }
  const { candidateAccuracy: cand, servingAccuracy: serving } = pair;
  if (pair.labelled >= policy.minLabelled && cand !== null && serving !== null) {
    if (cand < serving - policy.tolerance) {
      return {
        action: 'drop-candidate',
        version,
        reason: `${version} is ${pct(cand)} on ${pair.labelled} labelled inputs, more than ${pct(policy.tolerance)} below ${pointer.serving} (${pct(serving)})`,
      };
    }
    return {
      action: 'promote',
      version,
      reason: `${version} is ${pct(cand)} on ${pair.labelled} labelled inputs against ${pct(serving)} for ${pointer.serving}, agreeing on ${pct(pair.agreement)} of ${pair.samples}`,
    };
  }
  if (pair.agreement >= policy.minAgreement) {
    return {
      action: 'promote',
      version,
      reason: `${version} agrees with ${pointer.serving} on ${pct(pair.agreement)} of ${pair.samples} inputs (at least ${pct(policy.minAgreement)}), and too few labels (${pair.labelled}) say otherwise`,
    };
  }
  return {
    action: 'wait',
    reason: `${version} agrees on only ${pct(pair.agreement)} of ${pair.samples} inputs; ${pair.labelled} of ${policy.minLabelled} labelled inputs needed to judge which is right`,
  };
}

export function decide(input: DecisionInput): Decision {
  const { pointer, policy, now, alarms } = input;
  if (pointer.pinned) return { action: 'wait', reason: `${pointer.serving} is pinned by an operator` };
  const sinceChange = minutesSince(now, pointer.changedAt);
  if (sinceChange < policy.coolDownMinutes) {
    return {
      action: 'wait',
      reason: `cooling down: the pointer changed ${Math.floor(sinceChange)} min ago (${policy.coolDownMinutes} min)`,
    };
  }
  if (pointer.candidate) return judgeCandidate(input, pointer.candidate);
  const against = firing(alarms, pointer.serving, true);
  if (against.length > 0 && pointer.previous && sinceChange < policy.watchMinutes) {
    return {
      action: 'rollback',
      from: pointer.serving,
      to: pointer.previous,
      reason: `${against.map((a) => a.name).join(', ')} in ALARM ${Math.floor(sinceChange)} min after ${pointer.serving} was promoted`,
    };
  }
  return { action: 'wait', reason: 'no candidate, and nothing wrong with the serving version' };
}
