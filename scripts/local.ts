/**
 * `npm start`: the whole service on one machine. Starts the embedded S3
 * (data under .data/, kept between runs), trains and promotes a model if none
 * is serving yet, then serves the very same Lambda handlers over HTTP on
 * 127.0.0.1 from one process per core (local/workers.ts): predict for
 * everyone, retrain/promote (with training jobs run as child processes) for
 * whoever holds the token printed at start-up. The primary applies the rollout
 * policy on a timer (ROLLOUT_INTERVAL_SECONDS). Ctrl-C stops everything.
 */
import '#lib/exit-on-bad-config';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loggableConfig, portFrom, readConfig } from '#lib/config';
import { ConfigError } from '#lib/errors';
import { logger } from '#lib/log';
import { writeOwnerOnly } from '#lib/owner-only';
import { createProgress } from '#lib/progress';
import { openStorage, storageEnv } from '#lib/storage/storage';
import { ModelStore } from '#lib/storage/store';
import { isArch, type Arch } from '#lib/training/model';
import { makeHandler as makeOperatorHandler } from '../functions/retrain/app.ts';
import { TOKEN_FILE } from './cli/local-token.ts';
import { LOCAL_JOB_DEFINITION, LOCAL_QUEUE, LocalBatch } from './local/batch.ts';
import { assertPortFree, claimDataDir, exposureWarning, PreflightError } from './local/preflight.ts';
import { prepareModel } from './local/startup.ts';
import { startRolloutTimer } from './local/rollout-timer.ts';
import { startWorkers } from './local/workers.ts';

const USAGE = `Usage: npm start -- [options]

  --port N        HTTP port (PORT; default 3000)
  --host ADDR     address to bind (default 127.0.0.1; anything else is reachable
                  from other machines and prints a warning)
  --arch mlp|cnn  architecture to serve: trained first if no model is serving
                  yet (default mlp) or if another architecture is serving, then
                  promoted if it passes the quality gate
  --epochs N      epochs for that training (default 10)
  --workers N     server processes sharing the port (default: one per core, ${os.availableParallelism()} here)
  -h, --help      this text`;

interface LocalArgs {
  /** Unset, PORT decides (config.ts). */
  port?: number;
  host: string;
  arch?: Arch;
  epochs?: string;
  workers: number;
}

function parseLocalArgs(argv: string[]): LocalArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      arch: { type: 'string' },
      epochs: { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const port = values.port === undefined ? undefined : portFrom('--port', values.port);
  if (values.arch !== undefined && !isArch(values.arch))
    throw new Error(`--arch must be mlp or cnn; got "${values.arch}"`);
  const workers = Number(values.workers ?? os.availableParallelism());
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new Error(`--workers must be 1–64; got "${values.workers}"`);
  return { port, host: values.host!, arch: values.arch, epochs: values.epochs, workers };
}

async function main(): Promise<void> {
  const args = parseLocalArgs(process.argv.slice(2));
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = readConfig();
  const port = args.port ?? config.port;
  // Said before anything else, so it is not lost above a minute of training output.
  const warning = exposureWarning(args.host);
  if (warning) process.stderr.write(`WARNING: ${warning}\n`);
  await claimDataDir(config.dataDir);
  await assertPortFree(args.host, port);
  const storage = await openStorage(config);
  const store = new ModelStore(storage.objects);
  // The handler reads its configuration from the environment at import, exactly as in Lambda; server workers inherit it.
  Object.assign(process.env, storageEnv(storage));
  // Locally a promotion should show up within seconds, not Lambda's default minute.
  process.env.MODEL_REFRESH_SECONDS ??= '5';
  // Lambda prints captures for the log subscription to ship; here the server processes write them to the bucket.
  process.env.CAPTURE_MODE ??= 'bucket';
  const localConfig = readConfig();
  logger.debug('configuration', loggableConfig(localConfig));

  await prepareModel({ arch: args.arch, epochs: args.epochs }, store, localConfig, createProgress());

  const batch = new LocalBatch({
    env: {
      ...storageEnv(storage),
      MNIST_DIR: config.mnistDir && path.resolve(config.mnistDir),
      DATA_DIR: path.resolve(config.dataDir),
    },
    logger,
  });
  const operator = makeOperatorHandler({
    batch,
    store,
    target: { jobQueue: LOCAL_QUEUE, jobDefinition: LOCAL_JOB_DEFINITION },
    logger: logger.child({ function: 'retrain' }),
  });
  const token = randomBytes(24).toString('base64url');
  // claimDataDir made the folder. A token file left by an older version may be readable by others: tightened too.
  await writeOwnerOnly(path.join(config.dataDir, TOKEN_FILE), `${token}\n`);
  const served = await startWorkers({
    count: args.workers,
    settings: { host: args.host, port, token },
    operator,
    logger,
  });
  process.stderr.write(
    `digitnet is up: ${served.url}  (${args.workers} server process${args.workers === 1 ? '' : 'es'}; Ctrl-C to stop)\n`,
  );
  process.stderr.write(
    `operator token for /train and /promote: ${token}  (also in ${path.join(config.dataDir, TOKEN_FILE)})\n`,
  );
  process.stdout.write(
    `${JSON.stringify({
      event: 'ready',
      url: served.url,
      workers: args.workers,
      s3: storage.endpoint,
      bucket: storage.bucket,
    })}\n`,
  );

  const rollout =
    localConfig.rollout.intervalSeconds > 0
      ? startRolloutTimer({
          objects: storage.objects,
          policy: localConfig.rollout.policy,
          intervalSeconds: localConfig.rollout.intervalSeconds,
          logger: logger.child({ function: 'rollout' }),
        })
      : undefined;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write('\nstopping…\n');
    batch.stopAll();
    await rollout?.stop();
    await served.close();
    await storage.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start failed: ${(error as Error).message}\n`);
  // A preflight refusal or a bad setting is fully said in that line; anything else gets its stack in the log.
  if (!(error instanceof PreflightError || error instanceof ConfigError)) logger.error('local stack failed', { error });
  process.exit(1);
});
