/** Lambda entry for POST /feedback: real clients and config, built once at cold start; the rest is app.ts. */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { tokenBucket } from '#lib/rate-limit';
import { configuredBucket } from '#lib/storage/objects';
import { makeFeedbackHandler } from './app.ts';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the feedback function');

export const handler = makeFeedbackHandler({
  objects: configuredBucket(config.bucket, config).objects,
  logger: logger.child({ function: 'feedback' }),
  throttle: tokenBucket(config.feedbackLimit),
  metrics: createMetrics(config.metrics.mode, { stage: config.stage, component: 'feedback' }),
});
