import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loggableConfig, portFrom, readConfig, readLogLevel, readRegion, type Config } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { S3_TIMEOUT_DEFAULTS } from '#lib/storage/objects';

const ENDPOINT = 'http://127.0.0.1:4569';

describe('readConfig: the key pair for S3_ENDPOINT', () => {
  test('reads S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY set with S3_ENDPOINT', () => {
    const config = readConfig({
      BUCKET: 'b',
      S3_ENDPOINT: ENDPOINT,
      S3_ACCESS_KEY_ID: 'LOCALKEY',
      S3_SECRET_ACCESS_KEY: 'secret',
    });
    assert.deepEqual(config.s3Credentials, { accessKeyId: 'LOCALKEY', secretAccessKey: 'secret' });
  });

  test('leaves it unset when neither is set, so on AWS the SDK finds the role’s credentials', () => {
    assert.equal(readConfig({ BUCKET: 'b' }).s3Credentials, undefined);
    assert.equal(readConfig({ BUCKET: 'b', S3_ENDPOINT: ENDPOINT }).s3Credentials, undefined);
  });

  test('refuses half a pair, and a pair without S3_ENDPOINT', () => {
    const refused = (env: Record<string, string>, message: RegExp) =>
      assert.throws(
        () => readConfig({ BUCKET: 'b', ...env }),
        (error: Error) => error instanceof ConfigError && message.test(error.message),
      );
    refused({ S3_ENDPOINT: ENDPOINT, S3_ACCESS_KEY_ID: 'LOCALKEY' }, /go together/);
    refused({ S3_ENDPOINT: ENDPOINT, S3_SECRET_ACCESS_KEY: 'secret' }, /go together/);
    refused({ S3_ACCESS_KEY_ID: 'LOCALKEY', S3_SECRET_ACCESS_KEY: 'secret' }, /set S3_ENDPOINT too/);
  });
});

type Env = Record<string, string>;

const QUEUE_ARN = 'arn:aws:batch:eu-west-1:123456789012:job-queue/TrainingQueue-abc';
const DEFINITION_ARN = 'arn:aws:batch:eu-west-1:123456789012:job-definition/TrainingJobDefinition-abc:3';
const BATCH_TARGET = { jobQueue: QUEUE_ARN, jobDefinition: DEFINITION_ARN };

/** What readConfig makes of each variable, alone in an otherwise empty environment. */
const accepted: { env: Env; expect: Partial<Config> }[] = [
  {
    env: {},
    expect: { region: 'us-east-1', logLevel: 'info', tfjsBackend: undefined, port: 3000, batchJobId: undefined },
  },
  { env: {}, expect: { bucket: undefined, s3Endpoint: undefined, mnistDir: undefined, mnistBaseUrl: undefined } },
  {
    env: {},
    expect: { modelRefreshSeconds: 60, s3Timeouts: S3_TIMEOUT_DEFAULTS, minAccuracy: undefined, dataDir: '.data' },
  },
  { env: { BUCKET: 'digitnet-models' }, expect: { bucket: 'digitnet-models' } },
  { env: { S3_ENDPOINT: 'http://127.0.0.1:4569' }, expect: { s3Endpoint: 'http://127.0.0.1:4569' } },
  { env: { AWS_REGION: 'eu-west-1' }, expect: { region: 'eu-west-1' } },
  { env: { AWS_DEFAULT_REGION: 'ap-southeast-2' }, expect: { region: 'ap-southeast-2' } },
  { env: { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'us-west-2' }, expect: { region: 'eu-west-1' } },
  { env: { AWS_REGION: 'us-gov-west-1' }, expect: { region: 'us-gov-west-1' } },
  { env: { LOG_LEVEL: 'debug' }, expect: { logLevel: 'debug' } },
  { env: { LOG_LEVEL: 'DEBUG' }, expect: { logLevel: 'debug' } },
  { env: { LOG_LEVEL: ' Warn ' }, expect: { logLevel: 'warn' } },
  { env: { LOG_LEVEL: 'error' }, expect: { logLevel: 'error' } },
  { env: { LOG_LEVEL: '' }, expect: { logLevel: 'info' } },
  { env: { TFJS_BACKEND: 'node' }, expect: { tfjsBackend: 'node' } },
  { env: { TFJS_BACKEND: 'WASM' }, expect: { tfjsBackend: 'wasm' } },
  { env: { TFJS_BACKEND: 'cpu' }, expect: { tfjsBackend: 'cpu' } },
  { env: { PORT: '0' }, expect: { port: 0 } },
  { env: { PORT: '65535' }, expect: { port: 65_535 } },
  {
    env: { AWS_BATCH_JOB_ID: '5c7a3e1f-0b1d-4d6e-9f3a-2b8c1d0e4f5a' },
    expect: { batchJobId: '5c7a3e1f-0b1d-4d6e-9f3a-2b8c1d0e4f5a' },
  },
  { env: {}, expect: { trainThreads: undefined } },
  { env: { TRAIN_THREADS: '1' }, expect: { trainThreads: 1 } },
  { env: { TRAIN_THREADS: ' 2 ' }, expect: { trainThreads: 2 } },
  { env: { TRAIN_THREADS: '64' }, expect: { trainThreads: 64 } },
  { env: { MNIST_DIR: '/data/mnist' }, expect: { mnistDir: '/data/mnist' } },
  { env: { MNIST_BASE_URL: 'https://example.org/mnist/' }, expect: { mnistBaseUrl: 'https://example.org/mnist/' } },
  { env: { MODEL_REFRESH_SECONDS: '0' }, expect: { modelRefreshSeconds: 0 } },
  {
    env: { S3_CONNECT_TIMEOUT_MS: '500', S3_REQUEST_TIMEOUT_MS: '9000' },
    expect: { s3Timeouts: { connectMs: 500, requestMs: 9000 } },
  },
  { env: { MIN_ACCURACY: '0.95' }, expect: { minAccuracy: 0.95 } },
  { env: {}, expect: { maxLiveRegression: undefined } },
  { env: { MAX_LIVE_REGRESSION: '0.02' }, expect: { maxLiveRegression: 0.02 } },
  { env: { DATA_DIR: '/var/digitnet' }, expect: { dataDir: '/var/digitnet' } },
  { env: {}, expect: { capture: { mode: 'log', sampleRate: 1, flushSeconds: 5 } } },
  {
    env: { CAPTURE_MODE: 'Bucket', CAPTURE_SAMPLE_RATE: '0.1', CAPTURE_FLUSH_SECONDS: '0.5' },
    expect: { capture: { mode: 'bucket', sampleRate: 0.1, flushSeconds: 0.5 } },
  },
  { env: { CAPTURE_MODE: 'off' }, expect: { capture: { mode: 'off', sampleRate: 1, flushSeconds: 5 } } },
  { env: {}, expect: { drift: { windowDays: 7, threshold: 0.25, minSamples: 200 } } },
  {
    env: { DRIFT_WINDOW_DAYS: '3', DRIFT_THRESHOLD: '0.1', DRIFT_MIN_SAMPLES: '50' },
    expect: { drift: { windowDays: 3, threshold: 0.1, minSamples: 50 } },
  },
  {
    env: {},
    expect: {
      rollout: {
        policy: {
          minSamples: 500,
          minLabelled: 50,
          minAgreement: 0.97,
          tolerance: 0.01,
          coolDownMinutes: 30,
          watchMinutes: 1440,
        },
        intervalSeconds: 60,
      },
    },
  },
  {
    env: {
      ROLLOUT_MIN_SAMPLES: '100',
      ROLLOUT_MIN_LABELLED: '20',
      ROLLOUT_MIN_AGREEMENT: '0.9',
      ROLLOUT_TOLERANCE: '0',
      ROLLOUT_COOL_DOWN_MINUTES: '0',
      ROLLOUT_WATCH_MINUTES: '60',
      ROLLOUT_INTERVAL_SECONDS: '0',
    },
    expect: {
      rollout: {
        policy: {
          minSamples: 100,
          minLabelled: 20,
          minAgreement: 0.9,
          tolerance: 0,
          coolDownMinutes: 0,
          watchMinutes: 60,
        },
        intervalSeconds: 0,
      },
    },
  },
  { env: {}, expect: { feedbackLimit: { ratePerSecond: 5, burst: 20 } } },
  {
    env: { FEEDBACK_RATE_PER_SECOND: '0.5', FEEDBACK_BURST: '3' },
    expect: { feedbackLimit: { ratePerSecond: 0.5, burst: 3 } },
  },
  { env: {}, expect: { batchTarget: undefined } },
  { env: { JOB_QUEUE: QUEUE_ARN, JOB_DEFINITION: DEFINITION_ARN }, expect: { batchTarget: BATCH_TARGET } },
  { env: {}, expect: { stage: 'local', metrics: { mode: 'off', lowConfidenceThreshold: 0.6 } } },
  { env: { STAGE: 'Prod' }, expect: { stage: 'prod' } },
  {
    env: { AWS_LAMBDA_FUNCTION_NAME: 'PredictFunction' },
    expect: { metrics: { mode: 'emf', lowConfidenceThreshold: 0.6 } },
  },
  {
    env: { AWS_LAMBDA_FUNCTION_NAME: 'PredictFunction', METRICS: 'off' },
    expect: { metrics: { mode: 'off', lowConfidenceThreshold: 0.6 } },
  },
  {
    env: { METRICS: 'EMF', LOW_CONFIDENCE_THRESHOLD: '0.75' },
    expect: { metrics: { mode: 'emf', lowConfidenceThreshold: 0.75 } },
  },
  { env: { LOW_CONFIDENCE_THRESHOLD: '0' }, expect: { metrics: { mode: 'off', lowConfidenceThreshold: 0 } } },
];

const refused: { env: Env; message: string }[] = [
  { env: { ROLLOUT_MIN_SAMPLES: '0' }, message: 'ROLLOUT_MIN_SAMPLES must be a number from 1 to 10000000; got "0"' },
  {
    env: { ROLLOUT_MIN_LABELLED: 'many' },
    message: 'ROLLOUT_MIN_LABELLED must be a number from 1 to 10000000; got "many"',
  },
  { env: { ROLLOUT_MIN_AGREEMENT: '97' }, message: 'ROLLOUT_MIN_AGREEMENT must be a number from 0 to 1; got "97"' },
  { env: { ROLLOUT_TOLERANCE: '-0.01' }, message: 'ROLLOUT_TOLERANCE must be a number from 0 to 1; got "-0.01"' },
  {
    env: { ROLLOUT_COOL_DOWN_MINUTES: '1e9' },
    message: 'ROLLOUT_COOL_DOWN_MINUTES must be a number from 0 to 10080; got "1e9"',
  },
  {
    env: { ROLLOUT_WATCH_MINUTES: 'a day' },
    message: 'ROLLOUT_WATCH_MINUTES must be a number from 0 to 43200; got "a day"',
  },
  {
    env: { ROLLOUT_INTERVAL_SECONDS: '-1' },
    message: 'ROLLOUT_INTERVAL_SECONDS must be a number from 0 to 86400; got "-1"',
  },
  { env: { DRIFT_WINDOW_DAYS: '0' }, message: 'DRIFT_WINDOW_DAYS must be a number from 1 to 90; got "0"' },
  { env: { DRIFT_THRESHOLD: 'high' }, message: 'DRIFT_THRESHOLD must be a number from 0.01 to 10; got "high"' },
  { env: { DRIFT_MIN_SAMPLES: '-5' }, message: 'DRIFT_MIN_SAMPLES must be a number from 1 to 1000000; got "-5"' },
  { env: { LOG_LEVEL: 'verbose' }, message: 'LOG_LEVEL must be one of debug, info, warn, error; got "verbose"' },
  { env: { LOG_LEVEL: 'trace' }, message: 'LOG_LEVEL must be one of debug, info, warn, error; got "trace"' },
  { env: { TFJS_BACKEND: 'webgl' }, message: 'TFJS_BACKEND must be one of node, wasm, cpu; got "webgl"' },
  { env: { TRAIN_THREADS: '0' }, message: 'TRAIN_THREADS must be a whole number from 1 to 64; got "0"' },
  { env: { TRAIN_THREADS: '65' }, message: 'TRAIN_THREADS must be a whole number from 1 to 64; got "65"' },
  { env: { TRAIN_THREADS: '1.5' }, message: 'TRAIN_THREADS must be a whole number from 1 to 64; got "1.5"' },
  { env: { TRAIN_THREADS: 'all' }, message: 'TRAIN_THREADS must be a whole number from 1 to 64; got "all"' },
  { env: { PORT: '65536' }, message: 'PORT must be a whole number from 0 to 65535; got "65536"' },
  { env: { PORT: '-1' }, message: 'PORT must be a whole number from 0 to 65535; got "-1"' },
  { env: { PORT: '3000.5' }, message: 'PORT must be a whole number from 0 to 65535; got "3000.5"' },
  { env: { PORT: '0x10' }, message: 'PORT must be a whole number from 0 to 65535; got "0x10"' },
  { env: { PORT: 'http' }, message: 'PORT must be a whole number from 0 to 65535; got "http"' },
  { env: { AWS_REGION: 'Frankfurt' }, message: 'AWS_REGION must be an AWS region like us-east-1; got "Frankfurt"' },
  {
    env: { AWS_DEFAULT_REGION: 'eu_west_1' },
    message: 'AWS_DEFAULT_REGION must be an AWS region like us-east-1; got "eu_west_1"',
  },
  { env: { S3_ENDPOINT: 'ftp://127.0.0.1' }, message: 'S3_ENDPOINT must be an http(s) URL; got "ftp://127.0.0.1"' },
  { env: { MNIST_BASE_URL: 'mnist.example' }, message: 'MNIST_BASE_URL must be an http(s) URL; got "mnist.example"' },
  {
    env: { MODEL_REFRESH_SECONDS: 'soon' },
    message: 'MODEL_REFRESH_SECONDS must be a number from 0 to 86400; got "soon"',
  },
  {
    env: { S3_CONNECT_TIMEOUT_MS: '50' },
    message: 'S3_CONNECT_TIMEOUT_MS must be a number from 100 to 120000; got "50"',
  },
  {
    env: { S3_REQUEST_TIMEOUT_MS: '600001' },
    message: 'S3_REQUEST_TIMEOUT_MS must be a number from 100 to 600000; got "600001"',
  },
  { env: { MIN_ACCURACY: '98' }, message: 'MIN_ACCURACY must be a number from 0 to 1; got "98"' },
  { env: { MAX_LIVE_REGRESSION: '2' }, message: 'MAX_LIVE_REGRESSION must be a number from 0 to 1; got "2"' },
  {
    env: { MAX_LIVE_REGRESSION: 'one point' },
    message: 'MAX_LIVE_REGRESSION must be a number from 0 to 1; got "one point"',
  },
  {
    env: { JOB_QUEUE: QUEUE_ARN, JOB_DEFINITION: 'TrainingJobDefinition' },
    message: 'JOB_DEFINITION must be the ARN of a Batch job-definition; got "TrainingJobDefinition"',
  },
  {
    env: { JOB_QUEUE: DEFINITION_ARN, JOB_DEFINITION: DEFINITION_ARN },
    message: `JOB_QUEUE must be the ARN of a Batch job-queue; got "${DEFINITION_ARN}"`,
  },
  { env: { JOB_DEFINITION: DEFINITION_ARN }, message: 'JOB_QUEUE must be the ARN of a Batch job-queue; got nothing' },
  { env: { CAPTURE_MODE: 'disk' }, message: 'CAPTURE_MODE must be one of log, bucket, off; got "disk"' },
  { env: { CAPTURE_SAMPLE_RATE: '1.5' }, message: 'CAPTURE_SAMPLE_RATE must be a number from 0 to 1; got "1.5"' },
  { env: { CAPTURE_FLUSH_SECONDS: '0' }, message: 'CAPTURE_FLUSH_SECONDS must be a number from 0.01 to 3600; got "0"' },
  {
    env: { FEEDBACK_RATE_PER_SECOND: '-1' },
    message: 'FEEDBACK_RATE_PER_SECOND must be a number from 0.01 to 10000; got "-1"',
  },
  { env: { FEEDBACK_BURST: '0' }, message: 'FEEDBACK_BURST must be a number from 1 to 100000; got "0"' },
  { env: { STAGE: 'staging' }, message: 'STAGE must be one of local, dev, prod; got "staging"' },
  { env: { METRICS: 'stdout' }, message: 'METRICS must be one of emf, off; got "stdout"' },
  { env: { METRICS: 'true' }, message: 'METRICS must be one of emf, off; got "true"' },
  {
    env: { LOW_CONFIDENCE_THRESHOLD: '60' },
    message: 'LOW_CONFIDENCE_THRESHOLD must be a number from 0 to 1; got "60"',
  },
  {
    env: { LOW_CONFIDENCE_THRESHOLD: 'low' },
    message: 'LOW_CONFIDENCE_THRESHOLD must be a number from 0 to 1; got "low"',
  },
];

describe('readConfig: every variable, its default, what it accepts and what it refuses', () => {
  for (const { env, expect } of accepted) {
    test(`${JSON.stringify(env)} gives ${JSON.stringify(expect)}`, () => {
      const config = readConfig(env);
      assert.deepEqual(
        Object.fromEntries(Object.keys(expect).map((key) => [key, config[key as keyof Config]])),
        expect,
      );
    });
  }

  for (const { env, message } of refused) {
    test(`${JSON.stringify(env)} fails with a ConfigError naming what is allowed`, () => {
      assert.throws(
        () => readConfig(env),
        (error: Error) => error instanceof ConfigError && error.message === message,
      );
    });
  }

  test('the readers the logger and the CLIs use decide exactly as readConfig does', () => {
    assert.equal(readLogLevel({ LOG_LEVEL: 'ERROR' }), 'error');
    assert.throws(() => readLogLevel({ LOG_LEVEL: 'verbose' }), ConfigError);
    assert.equal(readRegion({}), undefined, 'unset, so the operator CLI can take the region from the API host');
    assert.equal(readRegion({ AWS_DEFAULT_REGION: 'eu-central-1' }), 'eu-central-1');
    assert.equal(portFrom('--port', '8080'), 8080);
    assert.throws(() => portFrom('--port', '99999'), /--port must be a whole number from 0 to 65535; got "99999"/);
  });

  test('the configuration a debug line shows leaves out the S3 secret key', () => {
    const config = readConfig({
      S3_ENDPOINT: ENDPOINT,
      S3_ACCESS_KEY_ID: 'LOCALKEY',
      S3_SECRET_ACCESS_KEY: 'the-secret',
    });
    const shown = JSON.stringify(loggableConfig(config));
    assert.ok(shown.includes('"s3AccessKeyId":"LOCALKEY"'), shown);
    assert.ok(!shown.includes('the-secret'), shown);
  });
});
