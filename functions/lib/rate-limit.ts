/**
 * A token bucket: `ratePerSecond` on average, bursts up to `burst`. In the
 * cloud API Gateway's route throttle is the limit that counts; this one holds
 * it per process, so the local stack and a single Lambda container cannot be
 * flooded either.
 */
import { TooManyRequestsError } from './errors.ts';

export interface RateLimit {
  ratePerSecond: number;
  burst: number;
}

export function tokenBucket(limit: RateLimit, now: () => number = () => performance.now()): () => void {
  let tokens = limit.burst;
  let last = now();
  return () => {
    const t = now();
    tokens = Math.min(limit.burst, tokens + ((t - last) / 1000) * limit.ratePerSecond);
    last = t;
    if (tokens >= 1) {
      tokens -= 1;
      return;
    }
    const wait = Math.max(1, Math.ceil((1 - tokens) / limit.ratePerSecond));
    throw new TooManyRequestsError(`too many requests on this route; retry in ${wait} s`, wait);
  };
}
