/**
 * Entry point of `npm run train` and of the Batch training container. The last
 * stdout line is one JSON object with the result.
 */
import '#lib/exit-on-bad-config';
import { loggableConfig, readConfig } from '#lib/config';
import { logger } from '#lib/log';
import { createProgress } from '#lib/progress';
import { parseTrainArgs, runTraining, USAGE, type TrainArgs } from './job.ts';

async function main(): Promise<void> {
  let args: TrainArgs | 'help';
  try {
    args = parseTrainArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = readConfig();
  logger.debug('configuration', loggableConfig(config));
  const outcome = await runTraining(args, config, createProgress());
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

main().catch((error: unknown) => {
  logger.error('training failed', { error });
  process.stderr.write(`training failed: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
