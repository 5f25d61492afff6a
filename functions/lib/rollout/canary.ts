/**
 * Which version answers a request while a candidate is set. A shadow never
 * answers. A canary answers the requests whose hash falls in its share: the
 * hash is of the request body, so a retry of the same request gets the same
 * version, and of the candidate's name too, so each canary gets its own slice
 * of traffic rather than the same users every time. Raising the percent of the
 * same candidate keeps everyone it already answered.
 */
import { createHash } from 'node:crypto';
import type { Candidate } from '../storage/store.ts';

/** 0–99 for a request body and a candidate version; uniform over distinct bodies. */
export function canaryBucket(version: string, body: string): number {
  return createHash('sha256').update(version).update('\0').update(body).digest().readUInt32BE(0) % 100;
}

export function answeredByCandidate(candidate: Candidate, body: string | undefined): boolean {
  return candidate.mode === 'canary' && canaryBucket(candidate.version, body ?? '') < candidate.percent;
}
