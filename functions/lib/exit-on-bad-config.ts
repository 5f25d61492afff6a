/**
 * Imported first by the command-line entry points (npm start, npm run train):
 * the logger reads LOG_LEVEL at import, so without this a bad setting would
 * stop the process with Node's stack trace before the entry point's own
 * readConfig() could say what is wrong. Here it is said in one line.
 */
import { readConfig } from './config.ts';

try {
  readConfig();
} catch (error) {
  process.stderr.write(`invalid configuration: ${(error as Error).message}\n`);
  process.exit(1);
}
