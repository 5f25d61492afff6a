/**
 * The Lambda predict handler served over HTTP on 127.0.0.1, in its own
 * process, as `npm start` serves it: a test can watch the whole process (does
 * it die, does it log an unhandled rejection) rather than one call. Prints
 * {"url": ...} on stdout once listening; configured by the usual environment.
 */
import { handler } from '../../functions/predict/handler.ts';
import { serveHandler } from '../../scripts/local/http-adapter.ts';

const served = await serveHandler(handler, {
  host: '127.0.0.1',
  port: 0,
  onError: (error) =>
    process.stderr.write(`${JSON.stringify({ level: 'error', message: 'adapter error', error: String(error) })}\n`),
});
process.stdout.write(`${JSON.stringify({ url: served.url })}\n`);
