/**
 * Lambda entry point of the operator routes: real clients and settings, built
 * once at cold start (a missing setting fails here, not mid-request);
 * everything else is in app.ts and functions/lib.
 */
import { BatchClient } from '@aws-sdk/client-batch';
import { loggableConfig, readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { configuredBucket } from '#lib/storage/objects';
import { ModelStore } from '#lib/storage/store';
import { makeHandler } from './app.ts';
import { batchJobs } from './batch-jobs.ts';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the retrain function');
if (!config.batchTarget)
  throw new ConfigError('JOB_QUEUE and JOB_DEFINITION (Batch ARNs) must be set for the retrain function');

const log = logger.child({ function: 'retrain' });
log.debug('configuration', loggableConfig(config));

export const handler = makeHandler({
  batch: batchJobs(new BatchClient({ region: config.region })),
  store: new ModelStore(configuredBucket(config.bucket, config).objects),
  target: config.batchTarget,
  logger: log,
  metrics: createMetrics(config.metrics.mode, { stage: config.stage, component: 'retrain' }),
});
