/**
 * One `npm start` server process (see workers.ts): the predict handler as it
 * runs in Lambda, with operator routes passed to the primary. It loads the
 * serving model before it reports that it listens, so the first request a
 * user sends is as fast as the rest.
 */
import { logger } from '#lib/log';
import { serveHandler, type LambdaLike } from './http-adapter.ts';
import { localHandler } from './routes.ts';
import { WORKER_SETTINGS_ENV, type PrimaryMessage, type WorkerMessage, type WorkerSettings } from './workers.ts';

function send(message: WorkerMessage): void {
  process.send!(message);
}

/** The primary's operator handler, called over IPC. */
function remoteOperator(): LambdaLike {
  let nextId = 0;
  const pending = new Map<number, (result: Awaited<ReturnType<LambdaLike>>) => void>();
  process.on('message', (message: PrimaryMessage) => {
    if (message.type !== 'operator-result') return;
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  });
  return (event, context) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      send({ type: 'operator', id, event, context });
    });
}

async function main(): Promise<void> {
  const settings = JSON.parse(process.env[WORKER_SETTINGS_ENV] ?? '') as WorkerSettings;
  const { handler: predict, flushCaptures } = await import('../../functions/predict/handler.ts');
  await predict(
    {
      rawPath: '/health',
      headers: {},
      requestContext: { requestId: 'warm-up', http: { method: 'GET', path: '/health' } },
    } as Parameters<LambdaLike>[0],
    { awsRequestId: 'warm-up' },
  );
  const { handler: feedback } = await import('../../functions/feedback/handler.ts');
  const handler = localHandler({ predict, feedback, operator: remoteOperator(), token: settings.token });
  const served = await serveHandler(handler, {
    host: settings.host,
    port: settings.port,
    onError: (error) => logger.error('local server error', { error }),
  });
  send({ type: 'listening', url: served.url });
  // The primary stops workers with SIGTERM; Ctrl-C reaches the whole process group, and the primary decides.
  process.on('SIGINT', () => {});
  process.on(
    'SIGTERM',
    () =>
      void served
        .close()
        .then(flushCaptures)
        .finally(() => process.exit(0)),
  );
}

main().catch((error: unknown) => {
  logger.error('server worker failed to start', { error });
  process.exit(1);
});
