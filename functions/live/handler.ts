/**
 * The scheduled live function: joins captures with feedback and rewrites
 * `models/<version>/live.json` for every version with captures, input drift
 * included (see `functions/lib/live/`), and publishes each version's
 * LiveFeedback, LiveAccuracy and DriftScore as metrics (the Drift alarm reads
 * the largest DriftScore). A version whose drift is over DRIFT_THRESHOLD is
 * logged as a warning. The schedule's event carries nothing it needs.
 */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { driftScore } from '#lib/live/drift';
import { refreshLiveSummaries } from '#lib/live/stored';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { configuredBucket } from '#lib/storage/objects';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the live function');
const { objects } = configuredBucket(config.bucket, config);
const log = logger.child({ function: 'live' });
const metrics = createMetrics(config.metrics.mode, { stage: config.stage, component: 'live' });
const driftMetrics = createMetrics(config.metrics.mode, { stage: config.stage, component: 'drift' });

export const handler = async (_event: unknown) => {
  const { versions, skipped } = await refreshLiveSummaries(objects, new Date(), {
    drift: config.drift,
    lowConfidenceThreshold: config.metrics.lowConfidenceThreshold,
  });
  const result = {
    versions: versions.map(({ version, predictions, feedback, correct, accuracy, low, high, drift }) => ({
      version,
      predictions,
      feedback,
      correct,
      accuracy,
      low,
      high,
      drift: drift && { level: drift.level, score: drift.score, samples: drift.samples, alarm: drift.alarm },
    })),
    skipped,
  };
  log.info('live summaries refreshed', result);
  // One line per version: a line holds one value of the modelVersion dimension.
  for (const { version, feedback, accuracy, drift } of versions) {
    const byVersion = { modelVersion: version };
    const set = metrics.begin().add('LiveFeedback', feedback, 'Count', byVersion);
    if (accuracy !== null) set.add('LiveAccuracy', accuracy, 'None', byVersion);
    set.flush(log);
    const score = driftScore(drift);
    if (score) driftMetrics.begin().add('DriftScore', score.score, 'None', byVersion).flush(log);
    if (drift?.alarm) log.warn('input drift over the threshold', { modelVersion: version, ...drift });
  }
  return result;
};
