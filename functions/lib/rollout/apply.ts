/**
 * The rollout decision, applied: reads what `decide` needs (the pointer with
 * its ETag, the serving and candidate versions' figures on the same traffic,
 * the alarms), decides, and makes the one pointer write the decision calls
 * for, conditional on the pointer it read. The scheduled rollout function and
 * `npm start`'s timer both call this; only the alarms port differs (CloudWatch
 * in the cloud, none locally).
 *
 * A write that loses the race (someone changed the pointer in between) is not
 * an error: the decision was about a pointer that no longer exists, and the
 * next run decides again on the new one.
 */
import { PointerChangedError } from '../errors.ts';
import { compareVersions } from '../live/comparison.ts';
import { readLiveAnswers } from '../live/read.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/objects.ts';
import { type LatestPointer, ModelStore } from '../storage/store.ts';
import {
  type Alarm,
  type Decision,
  decide,
  type PairFigures,
  type PointerState as DecisionPointer,
  type RolloutPolicy,
} from './decide.ts';

export interface RolloutDeps {
  objects: ObjectStore;
  /** This service's alarms and their states; none locally. */
  alarms: () => Promise<Alarm[]>;
  policy: RolloutPolicy;
  logger: Logger;
  now?: () => Date;
}

/** The decision, and whether its pointer write (if it needed one) was made. */
export type RolloutOutcome = Decision & { applied: boolean };

/** The pointer as `decide` sees it; `changedAt` falls back on the last time the pointer recorded before it kept one. */
function decisionPointer(pointer: LatestPointer): DecisionPointer {
  const changedAt =
    pointer.changedAt ??
    [pointer.promotedAt, pointer.candidate?.since]
      .filter((t) => t !== undefined)
      .sort((a, b) => Date.parse(b) - Date.parse(a))[0]!;
  return {
    serving: pointer.version,
    ...(pointer.previous ? { previous: pointer.previous } : {}),
    changedAt,
    ...(pointer.pinned ? { pinned: true } : {}),
    ...(pointer.candidate ? { candidate: pointer.candidate } : {}),
  };
}

/**
 * The pair's figures from the captures since the candidate's `since` only:
 * the same pair may have run before (the other way round, or as an earlier
 * candidate), and that evidence was judged then.
 */
async function pairFigures(
  objects: ObjectStore,
  serving: string,
  candidate: NonNullable<LatestPointer['candidate']>,
): Promise<PairFigures | undefined> {
  const since = Date.parse(candidate.since);
  const data = await readLiveAnswers(objects, { since: candidate.since.slice(0, 10) });
  const recent = (time: string) => Date.parse(time) >= since;
  const comparison = compareVersions(
    {
      captures: data.captures.filter((c) => recent(c.time)),
      labelled: data.labelled.filter((l) => recent(l.capture.time)),
    },
    [serving, candidate.version],
  )[0];
  if (!comparison) return undefined;
  const score = (version: string) => comparison.scores.find((s) => s.version === version)!.accuracy;
  return {
    samples: comparison.compared,
    agreement: comparison.agreement,
    labelled: comparison.feedback,
    candidateAccuracy: score(candidate.version),
    servingAccuracy: score(serving),
  };
}

export async function applyRollout(deps: RolloutDeps): Promise<RolloutOutcome> {
  const { objects, logger: log, policy } = deps;
  const now = deps.now?.() ?? new Date();
  const store = new ModelStore(objects);
  const basis = await store.pointerState();
  if (!basis.pointer) {
    const reason = basis.invalid ? `the serving pointer is invalid: ${basis.invalid}` : 'no version is serving yet';
    return { action: 'wait', reason, applied: false };
  }
  const pointer = decisionPointer(basis.pointer);
  const candidate = basis.pointer.candidate;
  // A pinned pointer is left alone whatever the figures say: no need to read them.
  const [pair, alarms] = await Promise.all([
    candidate && !pointer.pinned ? pairFigures(objects, pointer.serving, candidate) : undefined,
    deps.alarms(),
  ]);
  const decision = decide({ now, pointer, ...(pair ? { pair } : {}), alarms, policy });
  if (decision.action === 'wait') {
    log.debug('rollout: waiting', { reason: decision.reason, pair });
    return { ...decision, applied: false };
  }
  const options = { basedOn: basis, now };
  try {
    if (decision.action === 'promote')
      await store.promote(decision.version, { ...options, by: { actor: 'schedule', reason: decision.reason } });
    else if (decision.action === 'drop-candidate')
      await store.clearCandidate({ ...options, by: { actor: 'rollback', reason: decision.reason } });
    else await store.promote(decision.to, { ...options, by: { actor: 'rollback', reason: decision.reason } });
  } catch (error) {
    if (!(error instanceof PointerChangedError)) throw error;
    log.info('rollout: the pointer changed after it was read; deciding again next time', {
      decision,
      problem: error.message,
    });
    return { ...decision, applied: false };
  }
  // A promotion is the policy working; dropping or rolling back means something went wrong on live traffic.
  (decision.action === 'promote' ? log.info : log.warn).call(log, `rollout: ${decision.action}`, { ...decision, pair });
  return { ...decision, applied: true };
}
