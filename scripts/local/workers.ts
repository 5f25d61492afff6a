/**
 * `npm start` serves from one process per core: a handler spends most of a
 * request decoding the image and running the model, both single-threaded, so
 * one process leaves the other cores idle. The primary (this module's caller)
 * keeps what must exist once — the embedded S3, the local Batch and its job
 * table — and the workers (worker.ts) share the HTTP port through node:cluster.
 * Operator requests reach the primary over the cluster's IPC channel, so every
 * worker sees the same jobs. A worker that dies is replaced.
 */
import cluster, { type Worker } from 'node:cluster';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { internalError } from '#lib/http';
import type { Logger } from '#lib/log';
import type { LambdaLike } from './http-adapter.ts';

const WORKER_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.ts');

/** What a worker is told through its environment. */
export interface WorkerSettings {
  host: string;
  port: number;
  token: string;
}

export const WORKER_SETTINGS_ENV = 'DIGITNET_WORKER';

/** Messages on the cluster IPC channel. */
export type WorkerMessage =
  | { type: 'listening'; url: string }
  | { type: 'operator'; id: number; event: Parameters<LambdaLike>[0]; context: Parameters<LambdaLike>[1] };
export type PrimaryMessage = { type: 'operator-result'; id: number; result: Awaited<ReturnType<LambdaLike>> };

export interface Workers {
  url: string;
  close(): Promise<void>;
}

function answerOperator(worker: Worker, operator: LambdaLike, logger: Logger): void {
  worker.on('message', (message: WorkerMessage) => {
    if (message.type !== 'operator') return;
    operator(message.event, message.context)
      .catch((error: unknown) => {
        logger.error('operator request failed', { error });
        return internalError(message.context.awsRequestId);
      })
      .then((result) => {
        if (worker.isConnected())
          worker.send({ type: 'operator-result', id: message.id, result } satisfies PrimaryMessage);
      });
  });
}

/** Forks `count` workers serving on settings.host:port; resolves once all of them listen. */
export async function startWorkers(options: {
  count: number;
  settings: WorkerSettings;
  operator: LambdaLike;
  logger: Logger;
}): Promise<Workers> {
  const { count, settings, operator, logger } = options;
  cluster.setupPrimary({ exec: WORKER_ENTRY, execArgv: ['--import', 'tsx'] });
  let stopping = false;
  const fork = (): Worker => {
    const worker = cluster.fork({
      [WORKER_SETTINGS_ENV]: JSON.stringify(settings),
      // The primary has printed the AWS SDK's Node-version notice already; one copy per core is noise.
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    answerOperator(worker, operator, logger);
    return worker;
  };
  const listening = Array.from({ length: count }, () => {
    const worker = fork();
    return new Promise<string>((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => message.type === 'listening' && resolve(message.url));
      worker.once('exit', (code) =>
        reject(new Error(`a server worker exited with code ${code} before it was listening`)),
      );
    });
  });
  const urls = await Promise.all(listening);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error('server worker died; starting another', { pid: worker.process.pid, code, signal });
    fork();
  });
  return {
    url: urls[0]!,
    close: async () => {
      stopping = true;
      await Promise.all(
        Object.values(cluster.workers ?? {}).map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (!worker || worker.isDead()) return resolve();
              worker.once('exit', () => resolve());
              worker.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
