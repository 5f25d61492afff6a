/**
 * The scheduled live function: joins captures with feedback and rewrites
 * `models/<version>/live.json` for every version with captures (see
 * `functions/lib/live/`), and publishes each version's LiveFeedback and
 * LiveAccuracy as metrics. The schedule's event carries nothing it needs.
 */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { refreshLiveSummaries } from '#lib/live/stored';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { configuredBucket } from '#lib/storage/objects';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the live function');
const { objects } = configuredBucket(config.bucket, config);
const log = logger.child({ function: 'live' });
const metrics = createMetrics(config.metrics.mode, { stage: config.stage, component: 'live' });

export const handler = async (_event: unknown) => {
  const { versions, skipped } = await refreshLiveSummaries(objects);
  const result = {
    versions: versions.map(({ version, predictions, feedback, correct, accuracy, low, high }) => ({
      version,
      predictions,
      feedback,
      correct,
      accuracy,
      low,
      high,
    })),
    skipped,
  };
  log.info('live summaries refreshed', result);
  // One line per version: a line holds one value of the modelVersion dimension.
  for (const { version, feedback, accuracy } of versions) {
    const byVersion = { modelVersion: version };
    const set = metrics.begin().add('LiveFeedback', feedback, 'Count', byVersion);
    if (accuracy !== null) set.add('LiveAccuracy', accuracy, 'None', byVersion);
    set.flush(log);
  }
  return result;
};
