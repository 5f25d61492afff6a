/**
 * AWS Batch for the local stack: the retrain handler submits and describes
 * jobs through this exactly as it does through the real BatchClient (the
 * BatchJobs port of functions/retrain/batch-jobs.ts), and each
 * job is the training entry point run as a child process against the same
 * bucket. Progress goes into `statusReason`, which Batch leaves free-form.
 * Jobs run one at a time, first come first served, and wait as RUNNABLE
 * meanwhile, as they do in a compute environment that is full: two trainings
 * at once would only share the cores, with the servers' too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobDetail } from '@aws-sdk/client-batch';
import type { Logger } from '#lib/log';
import type { BatchJobs, JobSubmission } from '../../functions/retrain/batch-jobs.ts';
import { eachLine, lastErrorOf } from './job-output.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const LOCAL_QUEUE = 'arn:aws:batch:local:000000000000:job-queue/digitnet-local';
export const LOCAL_JOB_DEFINITION = 'arn:aws:batch:local:000000000000:job-definition/digitnet-train:1';

export interface LocalBatchOptions {
  /** Environment of every job: the bucket, endpoint and dataset location. */
  env: Record<string, string | undefined>;
  logger: Logger;
  /** The program each job runs, as argv; by default the training entry point, which the job's environment configures. */
  command?: [string, ...string[]];
}

function progressOf(line: string): string | undefined {
  try {
    const event = JSON.parse(line) as {
      event?: string;
      label?: string;
      fraction?: number;
      epoch?: number;
      epochs?: number;
      valAccuracy?: number;
    };
    if (event.event === 'progress' && event.fraction !== undefined)
      return `${event.label ?? 'working'}: ${Math.round(event.fraction * 100)}%`;
    if (event.event === 'epoch')
      return `epoch ${event.epoch}/${event.epochs} done, validation accuracy ${event.valAccuracy?.toFixed(4)}`;
  } catch {
    return undefined;
  }
  return undefined;
}

interface QueuedJob {
  job: JobDetail;
  env: Record<string, string | undefined>;
}

export class LocalBatch implements BatchJobs {
  private readonly jobs = new Map<string, JobDetail>();
  private readonly waiting: QueuedJob[] = [];
  private running?: { job: JobDetail; child: ChildProcess };

  constructor(private readonly options: LocalBatchOptions) {}

  async describe(jobId: string): Promise<JobDetail | undefined> {
    return this.jobs.get(jobId);
  }

  async submit({ jobName, jobQueue, jobDefinition, containerOverrides }: JobSubmission): Promise<string> {
    const jobId = randomUUID();
    const { environment } = containerOverrides;
    const job: JobDetail = {
      jobId,
      jobName,
      jobQueue,
      jobDefinition,
      status: 'RUNNABLE',
      createdAt: Date.now(),
      startedAt: undefined,
      container: { environment },
    };
    this.jobs.set(jobId, job);
    const env: Record<string, string | undefined> = { ...process.env, ...this.options.env };
    for (const pair of environment) if (pair.name) env[pair.name] = pair.value;
    env.AWS_BATCH_JOB_ID = jobId;
    this.waiting.push({ job, env });
    this.options.logger.info('local training job submitted', {
      jobId,
      jobName,
      ahead: this.waiting.length - 1 + (this.running ? 1 : 0),
    });
    this.startNext();
    return jobId;
  }

  /** Starts the first waiting job if none is running, and tells the others whom they wait for. */
  private startNext(): void {
    if (!this.running) {
      const next = this.waiting.shift();
      if (next) this.run(next);
    }
    for (const { job } of this.waiting) job.statusReason = `waiting for job ${this.running!.job.jobId} to finish`;
  }

  private run({ job, env }: QueuedJob): void {
    job.status = 'RUNNING';
    job.startedAt = Date.now();
    job.statusReason = 'starting';
    const [program, ...args] = this.options.command ?? [
      process.execPath,
      '--import',
      'tsx',
      path.join(root, 'functions', 'train', 'main.ts'),
    ];
    const child = spawn(program, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.running = { job, child };
    eachLine(child.stdout, (line) => {
      job.statusReason = progressOf(line) ?? job.statusReason;
    });
    const errors = lastErrorOf(child.stderr);
    // 'close', not 'exit': only then has all of the job's output been read.
    child.on('close', (code, signal) => {
      this.running = undefined;
      job.stoppedAt = Date.now();
      job.container = { ...job.container, exitCode: code ?? undefined };
      job.status = code === 0 ? 'SUCCEEDED' : 'FAILED';
      job.statusReason =
        code === 0
          ? 'Essential container in task exited'
          : (errors.last ?? `training exited with ${signal ?? `code ${code}`}`);
      this.options.logger.info('local training job finished', { jobId: job.jobId, status: job.status, exitCode: code });
      this.startNext();
    });
    this.options.logger.info('local training job started', { jobId: job.jobId, jobName: job.jobName, pid: child.pid });
  }

  /** Stops the running job and drops the waiting ones (Ctrl-C on the local stack). */
  stopAll(): void {
    this.waiting.length = 0;
    this.running?.child.kill('SIGTERM');
  }
}
