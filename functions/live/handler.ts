/**
 * The scheduled live function: joins captures with feedback and rewrites
 * `models/<version>/live.json` for every version with captures (see
 * `functions/lib/live/`). The schedule's event carries nothing it needs.
 */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { refreshLiveSummaries } from '#lib/live/stored';
import { logger } from '#lib/log';
import { createS3Client, S3ObjectStore } from '#lib/storage/objects';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the live function');
const s3 = createS3Client({
  bucket: config.bucket,
  endpoint: config.s3Endpoint,
  region: config.region,
  credentials: config.s3Credentials,
  timeouts: config.s3Timeouts,
});
const objects = new S3ObjectStore(s3, config.bucket);
const log = logger.child({ function: 'live' });

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
  return result;
};
