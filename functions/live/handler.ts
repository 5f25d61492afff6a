/**
 * The scheduled live function: joins captures with feedback and rewrites
 * `models/<version>/live.json` for every version with captures, input drift
 * included (see `functions/lib/live/`; `driftScore` there is what a metric
 * publishes). A version whose drift is over DRIFT_THRESHOLD is logged as a
 * warning. The schedule's event carries nothing it needs.
 */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { refreshLiveSummaries } from '#lib/live/stored';
import { logger } from '#lib/log';
import { configuredBucket } from '#lib/storage/objects';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the live function');
const { objects } = configuredBucket(config.bucket, config);
const log = logger.child({ function: 'live' });

export const handler = async (_event: unknown) => {
  const { versions, skipped } = await refreshLiveSummaries(objects, new Date(), config.drift);
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
  for (const { version, drift } of versions) {
    if (drift?.alarm) log.warn('input drift over the threshold', { modelVersion: version, ...drift });
  }
  return result;
};
