/**
 * Two versions judged on the same traffic: while a candidate runs (shadow or
 * canary), each capture carries the other version's answer to the same input
 * (`alternative`), so how often they agree needs no feedback, and every input
 * a user labelled scores both. Pure, like `summary.ts`.
 *
 * Feedback is given on the answer shown, and users correct mistakes more often
 * than they confirm right answers, so the labelled inputs over-represent the
 * shown version's mistakes: on shadow traffic, where the serving version always
 * answers, the comparison leans towards the candidate.
 */
import type { LiveData } from './read.ts';
import type { Alternative, CaptureAnswer } from './records.ts';
import { wilsonInterval } from './summary.ts';

/** The caveat every view of these comparisons carries, in one wording. */
export const COMPARISON_CAVEAT =
  'Feedback is given on the answer shown, and users correct more than they confirm: the labelled inputs ' +
  'over-represent the answering version’s mistakes, so on shadow traffic the comparison leans towards the candidate.';

export interface VersionScore {
  version: string;
  /** Captures of the pair this version answered (a canary's share; all of them for the serving side of a shadow). */
  answered: number;
  /** Labelled inputs on which this version's answer was the user's label. */
  correct: number;
  /** correct / the pair's feedback; null without feedback. */
  accuracy: number | null;
  /** The 95% Wilson interval of `accuracy`. */
  low: number | null;
  high: number | null;
}

export interface PairComparison {
  /** The two versions, sorted by name (oldest first); `scores` is in the same order. */
  versions: [string, string];
  /** Captures carrying both versions' answers. */
  compared: number;
  /** Of those, the ones where both gave the same digit. */
  agreed: number;
  /** agreed / compared. */
  agreement: number;
  /** Compared captures a user labelled; both versions are scored on each. */
  feedback: number;
  scores: [VersionScore, VersionScore];
}

interface Tally {
  compared: number;
  agreed: number;
  answered: Map<string, number>;
  feedback: number;
  correct: Map<string, number>;
}

const pairKey = (a: string, b: string): [string, string] => (a < b ? [a, b] : [b, a]);

/**
 * One comparison per pair of versions in `stored` that captures compare,
 * ordered by the pair's names. Captures naming a version the bucket does not
 * hold are left out, as `summarizeLive` leaves them out.
 */
export function compareVersions(
  data: Pick<LiveData<CaptureAnswer>, 'captures' | 'labelled'>,
  stored: readonly string[],
): PairComparison[] {
  const known = new Set(stored);
  const tallies = new Map<string, { versions: [string, string]; tally: Tally }>();
  /** The tally of the capture's pair, with the other version's answer; undefined when it compares no known pair. */
  const tallyOf = (capture: CaptureAnswer): { tally: Tally; other: Alternative } | undefined => {
    const other = capture.alternative;
    if (other === undefined || !known.has(capture.modelVersion) || !known.has(other.modelVersion)) return undefined;
    const versions = pairKey(capture.modelVersion, other.modelVersion);
    const key = versions.join(' ');
    let entry = tallies.get(key);
    if (!entry) {
      const tally = { compared: 0, agreed: 0, answered: new Map(), feedback: 0, correct: new Map() };
      entry = { versions, tally };
      tallies.set(key, entry);
    }
    return { tally: entry.tally, other };
  };
  const add = (counts: Map<string, number>, version: string) => counts.set(version, (counts.get(version) ?? 0) + 1);
  for (const capture of data.captures) {
    const found = tallyOf(capture);
    if (!found) continue;
    const { tally, other } = found;
    tally.compared++;
    if (capture.digit === other.digit) tally.agreed++;
    add(tally.answered, capture.modelVersion);
  }
  for (const { capture, label } of data.labelled) {
    const found = tallyOf(capture);
    if (!found) continue;
    const { tally, other } = found;
    tally.feedback++;
    if (capture.digit === label) add(tally.correct, capture.modelVersion);
    if (other.digit === label) add(tally.correct, other.modelVersion);
  }
  return [...tallies.values()]
    .sort((a, b) => (a.versions.join(' ') < b.versions.join(' ') ? -1 : 1))
    .map(({ versions, tally }) => {
      const score = (version: string): VersionScore => {
        const correct = tally.correct.get(version) ?? 0;
        const interval = wilsonInterval(correct, tally.feedback);
        return {
          version,
          answered: tally.answered.get(version) ?? 0,
          correct,
          accuracy: tally.feedback === 0 ? null : correct / tally.feedback,
          low: interval?.low ?? null,
          high: interval?.high ?? null,
        };
      };
      return {
        versions,
        compared: tally.compared,
        agreed: tally.agreed,
        agreement: tally.agreed / tally.compared,
        feedback: tally.feedback,
        scores: [score(versions[0]), score(versions[1])],
      };
    });
}
