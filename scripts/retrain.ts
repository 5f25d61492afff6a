/**
 * `npm run retrain -- --arch cnn --epochs 12 [--wait]`: starts a training job
 * on the deployed stack (AWS Batch) or the local one (a child process), and
 * with --wait follows it until the new version is stored and judged.
 */
import { parseArgs } from 'node:util';
import { errorText, operatorRequest, operatorTarget } from './cli/operator.ts';
import { runCli } from './cli/run.ts';

const USAGE = `Usage: npm run retrain -- [options]

Starts a training job; the new version is promoted if it passes the quality gate.

  --arch mlp|cnn    architecture (default mlp)
  --epochs N        epochs (default 10)
  --batch-size N    batch size (default: the job's, 128)
  --with-feedback   also train on users' corrections (the newest, capped at
                    10% of the training set, each counted 3 times); without
                    it, the job's default (off unless the stack's
                    trainWithFeedback is set)
  --wait            follow the job until it ends; exit 1 if it fails
  --url URL         the service (DIGITNET_URL; default the local stack,
                    http://127.0.0.1:3000). Only a URL on this machine
                    (localhost, 127.x.x.x, [::1]) gets the local token;
                    requests to any other are signed with your AWS credentials
  --deployed        the API that \`npm run deploy\` wrote to cdk.outputs.json
                    (requests are signed with your AWS credentials)
  -h, --help        this text`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface TrainedModel {
  version: string;
  accuracy: number;
  liveAccuracy?: number;
  serving: boolean;
  gate?: { passed: boolean; reasons: string[]; notes?: string[] };
}

/** `where` repeats how this service was named (--deployed, --url), so the promote command it suggests reaches it too. */
function verdict(model: TrainedModel, where: string): string {
  if (model.serving) return `promoted and serving${notes(model)}`;
  const anyway = `\`npm run promote -- ${model.version}${where}\` serves it anyway`;
  if (model.gate && !model.gate.passed)
    return `stored but NOT promoted, because ${model.gate.reasons.join('; ')}; ${anyway}${notes(model)}`;
  return `stored but not serving (see the job's log); ${anyway}${notes(model)}`;
}

/** Rules the gate could not apply (a live holdout too small to judge), so a pass is not read as more than it was. */
const notes = (model: TrainedModel) => (model.gate?.notes?.length ? ` (${model.gate.notes.join('; ')})` : '');

function scores(model: TrainedModel): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  return `test accuracy ${pct(model.accuracy)}${model.liveAccuracy === undefined ? '' : `, live-holdout accuracy ${pct(model.liveAccuracy)}`}`;
}

/** Where a cloud job's output went: the local stack's jobs have none, their last error is already the status reason. */
function jobLog(status: Record<string, unknown>): string | undefined {
  const { logGroupName: group, logStreamName: stream } = status;
  if (typeof group !== 'string' || typeof stream !== 'string') return undefined;
  return `CloudWatch log group ${group}, stream ${stream} (aws logs tail ${group} --log-stream-names ${stream})`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      arch: { type: 'string', default: 'mlp' },
      epochs: { type: 'string', default: '10' },
      'batch-size': { type: 'string' },
      'with-feedback': { type: 'boolean' },
      wait: { type: 'boolean', default: false },
      url: { type: 'string' },
      deployed: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const target = await operatorTarget({ url: values.url, deployed: values.deployed });
  const request: Record<string, unknown> = { arch: values.arch, epochs: Number(values.epochs) };
  if (values['batch-size'] !== undefined) request.batchSize = Number(values['batch-size']);
  if (values['with-feedback']) request.withFeedback = true;
  const submitted = await operatorRequest(target, 'POST', '/train', request);
  if (submitted.status !== 202) {
    process.stderr.write(`training was not started: ${errorText(submitted)}\n`);
    return 1;
  }
  const jobId = String(submitted.json.jobId);
  process.stderr.write(
    `training job ${jobId} started (${values.arch}, ${values.epochs} epochs${values['with-feedback'] ? ', with feedback' : ''})\n`,
  );
  if (!values.wait) {
    process.stdout.write(`${JSON.stringify(submitted.json)}\n`);
    return 0;
  }
  const interval = target.auth === 'sigv4' ? 15_000 : 2_000;
  let last = '';
  for (;;) {
    const status = await operatorRequest(target, 'GET', `/train/${jobId}`);
    if (status.status !== 200) {
      process.stderr.write(`cannot follow the job: ${errorText(status)}\n`);
      return 1;
    }
    const line = `${status.json.status}${status.json.statusReason ? ` — ${status.json.statusReason}` : ''}`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (status.json.done) {
      process.stdout.write(`${JSON.stringify(status.json)}\n`);
      if (status.json.status !== 'SUCCEEDED') {
        const log = jobLog(status.json);
        if (log) process.stderr.write(`the job's log: ${log}\n`);
        return 1;
      }
      const model = status.json.model as TrainedModel | undefined;
      const where = values.deployed ? ' --deployed' : values.url ? ` --url ${values.url}` : '';
      if (model) process.stderr.write(`${model.version}: ${scores(model)} — ${verdict(model, where)}\n`);
      return 0;
    }
    await sleep(interval);
  }
}

runCli(main);
