/**
 * `npm run deploy -- [cdk deploy options]`: `cdk deploy` with the stack's
 * outputs written to cdk.outputs.json, where `predict`, `retrain`, `promote`
 * and `models` find them with --deployed. It first checks that Docker can
 * build the training image: without it, cdk deploy fails only after it has
 * bundled the functions, half-way through.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { contextDefaults } from '../infra/config.ts';
import { OUTPUTS_FILE } from './cli/outputs.ts';
import { runCli } from './cli/run.ts';

const settings = contextDefaults()
  .map(([key, value]) => `  -c ${key}=${value}`)
  .join('\n');

const USAGE = `Usage: npm run deploy -- [cdk deploy options]

Deploys digitnet to the AWS account and region of your credentials and writes
its outputs (ApiUrl, BucketName, JobQueueArn, JobDefinitionArn, DashboardName,
DashboardUrl, AlarmTopicArn) to ${OUTPUTS_FILE}.
Before the first deploy to an account and region: npx cdk bootstrap.
Docker must be running: the training image is built from infra/train.Dockerfile
(CDK_DOCKER names another builder).

Settings, as CDK context (defaults shown; checked before anything is deployed):
${settings}
  -c alarmEmail=ADDRESS  (none: every alarm goes to the topic AlarmTopicArn only)
stage prod keeps the bucket and logs when the stack is deleted.
predictReservedConcurrency, retrainReservedConcurrency and
feedbackReservedConcurrency set concurrency aside for each function (off: none).
Lambda keeps 100 of the account's concurrency unreserved, so with an account
limit below 100 plus all three (new accounts may have 10) the deploy fails: set
them to off, or ask for a higher limit.

Any other option goes to cdk deploy: --profile NAME, --require-approval never, …
Tear down with: npx cdk destroy (add the same -c stage=… if you set one).`;

function dockerProblem(): string | undefined {
  const docker = process.env.CDK_DOCKER ?? 'docker';
  const info = spawnSync(docker, ['info'], { stdio: 'ignore' });
  if (info.status === 0) return undefined;
  const what = info.error ? `${docker} was not found` : `${docker} is installed but its engine is not running`;
  return `cannot deploy: ${what}. cdk deploy builds the training image with it (infra/train.Dockerfile); start Docker, or set CDK_DOCKER to another builder, and try again.`;
}

function main(): number {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const problem = dockerProblem();
  if (problem) {
    process.stderr.write(`${problem}\n`);
    return 1;
  }
  // Ask before widening permissions or exposure, unless the caller chose otherwise.
  const approval = args.some((arg) => arg.startsWith('--require-approval')) ? [] : ['--require-approval', 'broadening'];
  const cdk = spawnSync('cdk', ['deploy', ...approval, '--outputs-file', OUTPUTS_FILE, ...args], {
    stdio: 'inherit',
    // After PATH, so `npm run deploy` (which puts it first) and a caller's own cdk keep precedence.
    env: {
      ...process.env,
      PATH: [process.env.PATH, path.resolve(import.meta.dirname, '..', 'node_modules', '.bin')]
        .filter(Boolean)
        .join(path.delimiter),
    },
  });
  if (cdk.error) {
    process.stderr.write(`cannot run cdk: ${cdk.error.message}; run npm install first\n`);
    return 1;
  }
  if (cdk.status === 0) {
    process.stderr.write(
      `\nDeployed; outputs are in ${OUTPUTS_FILE}. The API answers 503 until a model is trained:\n` +
        '  npm run retrain -- --deployed --arch cnn --epochs 12 --wait\n' +
        '  npm run predict -- digit.png --deployed\n',
    );
  }
  return cdk.status ?? 1;
}

runCli(main);
