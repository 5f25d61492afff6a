/**
 * The two AWS Batch calls the operator API makes, as a port: the Lambda
 * adapts the SDK client with `batchJobs`, the local stack runs each job as a
 * child process behind the same two methods (scripts/local/batch.ts), and the
 * tests pass a plain fake.
 */
import {
  DescribeJobsCommand,
  SubmitJobCommand,
  type BatchClient,
  type JobDetail,
  type KeyValuePair,
} from '@aws-sdk/client-batch';

export interface JobSubmission {
  jobName: string;
  jobQueue: string;
  jobDefinition: string;
  containerOverrides: { environment: KeyValuePair[] };
}

export interface BatchJobs {
  /** The new job's id; undefined when Batch answers without one. */
  submit(job: JobSubmission): Promise<string | undefined>;
  /** Undefined for a job Batch does not know. */
  describe(jobId: string): Promise<JobDetail | undefined>;
}

export function batchJobs(client: Pick<BatchClient, 'send'>): BatchJobs {
  return {
    submit: async (job) => (await client.send(new SubmitJobCommand(job))).jobId,
    describe: async (jobId) => (await client.send(new DescribeJobsCommand({ jobs: [jobId] }))).jobs?.[0],
  };
}
