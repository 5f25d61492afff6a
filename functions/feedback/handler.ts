/** Lambda entry for POST /feedback: real clients and config, built once at cold start; the rest is app.ts. */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { tokenBucket } from '#lib/rate-limit';
import { createS3Client, S3ObjectStore } from '#lib/storage/objects';
import { makeFeedbackHandler } from './app.ts';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the feedback function');
const s3 = createS3Client({
  bucket: config.bucket,
  endpoint: config.s3Endpoint,
  region: config.region,
  credentials: config.s3Credentials,
  timeouts: config.s3Timeouts,
});

export const handler = makeFeedbackHandler({
  objects: new S3ObjectStore(s3, config.bucket),
  logger: logger.child({ function: 'feedback' }),
  throttle: tokenBucket(config.feedbackLimit),
});
