/**
 * The scheduled rollout function: applies the rollout decision
 * (`#lib/rollout/apply`) on a schedule and whenever one of the alarms a model
 * can cause changes state (both through EventBridge; neither event carries
 * anything it needs: it reads the alarms' current states itself). Returns the
 * decision; an automatic change is logged and in the audit trail.
 */
import { readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { applyRollout } from '#lib/rollout/apply';
import { type AwsCredentials, cloudWatchAlarms } from '#lib/rollout/cloudwatch-alarms';
import { configuredBucket } from '#lib/storage/objects';

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the rollout function');
const { objects } = configuredBucket(config.bucket, config);
const log = logger.child({ function: 'rollout' });

/** The role's credentials, which Lambda sets in the environment of every invocation's sandbox. */
function lambdaCredentials(): AwsCredentials {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN } = process.env;
  if (!AWS_ACCESS_KEY_ID || !AWS_SECRET_ACCESS_KEY)
    throw new ConfigError('the role credentials are not in the environment');
  return {
    accessKeyId: AWS_ACCESS_KEY_ID,
    secretAccessKey: AWS_SECRET_ACCESS_KEY,
    ...(AWS_SESSION_TOKEN ? { sessionToken: AWS_SESSION_TOKEN } : {}),
  };
}

const alarms = cloudWatchAlarms({ region: config.region, stage: config.stage, credentials: lambdaCredentials });

export const handler = async (_event: unknown) =>
  applyRollout({ objects, alarms, policy: config.rollout.policy, logger: log });
