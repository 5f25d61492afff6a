/**
 * Lambda entry point behind API Gateway: real clients and config, built once
 * at cold start; everything else is in app.ts and functions/lib.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend, useWasmFilesFrom } from '#lib/backend';
import { loggableConfig, readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { createMetrics } from '#lib/metrics';
import { BucketCaptureSink, type CaptureSink, logCaptureSink } from '#lib/live/capture-sink';
import { cachedLiveView } from '#lib/live/stored';
import { ModelCache } from '#lib/model-cache';
import { readCredentials, servingObjects } from '#lib/storage/s3-get';
import { ModelStore } from '#lib/storage/store';
import { makeHandler } from './app.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Bundled, the .wasm files and the page sit beside this file; unbundled they come from node_modules and web/. */
const bundled = existsSync(path.join(here, 'tfjs-backend-wasm-simd.wasm'));
if (bundled) useWasmFilesFrom(here);
const pagePath = bundled ? path.join(here, 'web', 'index.html') : path.join(here, '..', '..', 'web', 'index.html');

const config = readConfig();
if (!config.bucket) throw new ConfigError('BUCKET must be set for the predict function');
const credentials = readCredentials(config);
if (bundled) {
  // The bundle leaves the AWS SDK out (storage/s3-get.ts): it signs its reads with these and writes nothing.
  if (!credentials)
    throw new ConfigError(
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set: the predict function signs its reads with them',
    );
  if (config.capture.mode === 'bucket')
    throw new ConfigError('CAPTURE_MODE=bucket is for the local stack; the predict function captures to its log (log)');
}
// Reads are signed without the AWS SDK; unbundled, the SDK loads for the local stack's capture writes.
const objects = servingObjects(config.bucket, config, credentials);
const store = new ModelStore(objects);
const log = logger.child({ function: 'predict' });
log.debug('configuration', loggableConfig(config));
let page: Promise<string> | undefined;

function captureSink(): CaptureSink | undefined {
  const { mode, flushSeconds } = config.capture;
  if (mode === 'off') return undefined;
  if (mode === 'log') return logCaptureSink();
  return new BucketCaptureSink(objects, { maxRecords: 500, flushSeconds, writerId: String(process.pid), logger: log });
}
const sink = captureSink();

/** What the local stack calls before a server process exits: buffered captures are written, not lost. */
export const flushCaptures = () => sink?.flush() ?? Promise.resolve();

const backendReady = () => initBackend(['wasm', 'cpu'], config.tfjsBackend);

export const handler = makeHandler({
  cache: new ModelCache({ store, refreshSeconds: config.modelRefreshSeconds, logger: log, backendReady }),
  logger: log,
  backendReady,
  page: () => (page ??= readFile(pagePath, 'utf8')),
  report: (version) => store.attachment(version, 'report.html'),
  capture: sink && { sink, sampleRate: config.capture.sampleRate },
  live: cachedLiveView(store, log),
  metrics: {
    sink: createMetrics(config.metrics.mode, { stage: config.stage, component: 'predict' }),
    lowConfidenceThreshold: config.metrics.lowConfidenceThreshold,
  },
});
