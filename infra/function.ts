/**
 * The house Lambda: a NodejsFunction with the project's defaults, and `bind…`
 * methods that set an environment variable and its narrow grant together, so
 * a function never has a setting without the permission or the reverse.
 */
import path from 'node:path';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import type { Stage } from '#lib/config';
import { CAPTURES_PREFIX, FEEDBACK_PREFIX, LIVE_FILE } from '#lib/live/records';
import { AUDIT_PREFIX } from '#lib/storage/audit';
import { MODELS_PREFIX } from '#lib/storage/store';
import { LAMBDA_ESBUILD, REPO_ROOT, type LambdaAsset } from './lambda-bundle.ts';
import { acknowledge, arnFinding } from './nag.ts';

/** The live summary of a version, `models/<version>/live.json`, as the live-summary function writes it. */

export interface DigitFunctionProps extends LambdaAsset {
  /** STAGE: the `stage` dimension of the function's metrics. */
  stage: Stage;
  memoryMiB: number;
  timeout: Duration;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
  /** Concurrent executions set aside for (and the most allowed to) this function; none when absent. */
  reservedConcurrency?: number;
  description?: string;
}

function copyHooks(files: Record<string, string>): ICommandHooks {
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) =>
      Object.entries(files).map(([from, to]) => {
        const target = path.posix.join(outputDir, to);
        return `mkdir -p "${path.posix.dirname(target)}" && cp "${path.posix.join(inputDir, from)}" "${target}"`;
      }),
  };
}

export class DigitFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: DigitFunctionProps) {
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    // Our own role with write access to this one log group, instead of the managed
    // AWSLambdaBasicExecutionRole, which may create and write any log group in the account.
    const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    super(scope, id, {
      entry: path.join(REPO_ROOT, props.entry),
      handler: 'handler',
      description: props.description,
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      // Graviton: cheaper per GB-second, and the wasm backend has no x86-only parts.
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      role,
      logGroup,
      // Stack traces point at the TypeScript source instead of minified output.
      environment: { STAGE: props.stage, ...(props.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {}) },
      // LAMBDA_ESBUILD's settings as NodejsFunction's options; test/infra.test.ts checks the
      // asset comes out byte for byte as `npm run build` makes it.
      bundling: {
        tsconfig: path.join(REPO_ROOT, LAMBDA_ESBUILD.tsconfig),
        target: LAMBDA_ESBUILD.target,
        format: { esm: OutputFormat.ESM }[LAMBDA_ESBUILD.format],
        banner: LAMBDA_ESBUILD.banner,
        mainFields: [...LAMBDA_ESBUILD.mainFields],
        minify: LAMBDA_ESBUILD.minify,
        keepNames: LAMBDA_ESBUILD.keepNames,
        sourceMap: props.sourceMaps,
        sourcesContent: LAMBDA_ESBUILD.sourcesContent,
        // Replaces CDK's default externals (the AWS SDK), so the SDK is bundled too.
        externalModules: [...LAMBDA_ESBUILD.external],
        commandHooks: props.files ? copyHooks(props.files) : undefined,
      },
    });
    logGroup.grantWrite(role);
    acknowledge(
      this,
      'AwsSolutions-L1',
      'Pinned to Node.js 22, the LTS release the bundle targets and the training image runs; moving to 24 is a deliberate, tested upgrade rather than a side effect of a CDK update.',
    );
  }

  /**
   * Read-only access to model artifacts: GetObject on `models/*` and
   * ListBucket, nothing else (no write, no delete). ListBucket is there so S3
   * answers a read of a key that does not exist yet (models/latest.json before
   * the first promotion) with 404 — "no model yet, train one" — instead of 403,
   * which the service must treat as storage trouble. Key names are not secret.
   */
  bindModelsReadOnly(bucket: s3.IBucket): void {
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects('models/*')] }),
    );
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    this.acknowledgeModelsPrefix(bucket);
  }

  /**
   * Reads model versions and rewrites the serving pointer (promotion,
   * rollback), adding each change's audit record under `audit/pointer/`.
   * ListBucket lets ModelStore list versions and makes S3 answer a missing
   * key with 404 instead of 403; key names here are not secret.
   */
  bindModelsPromoter(bucket: s3.IBucket, latestKey: string): void {
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects('models/*')] }),
    );
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        resources: [bucket.arnForObjects(latestKey), bucket.arnForObjects(`${AUDIT_PREFIX}*`)],
      }),
    );
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    this.acknowledgeModelsPrefix(bucket);
    acknowledgeAuditPrefix(this.role!, bucket);
  }

  /**
   * The rollout decision: reads models, captures and feedback (to compare the
   * candidate with the serving version), writes the serving pointer and its
   * audit records and nothing else, and reads the states of the alarms a model
   * can cause, named one by one. Sets STAGE's alarms apart from other stages'.
   */
  bindRollout(bucket: s3.IBucket, latestKey: string, alarmArns: string[]): void {
    this.bindLiveDataReader(bucket, [bucket.arnForObjects(latestKey), bucket.arnForObjects(`${AUDIT_PREFIX}*`)]);
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['cloudwatch:DescribeAlarms'], resources: alarmArns }));
    acknowledgeAuditPrefix(this.role!, bucket);
  }

  /** What the rollout and live summary functions share: read captures, feedback and models, list, write `writes`. */
  private bindLiveDataReader(bucket: s3.IBucket, writes: string[]): void {
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [CAPTURES_PREFIX, FEEDBACK_PREFIX, MODELS_PREFIX].map((prefix) =>
          bucket.arnForObjects(`${prefix}*`),
        ),
      }),
    );
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: writes }));
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    this.acknowledgeModelsPrefix(bucket);
    for (const prefix of [CAPTURES_PREFIX, FEEDBACK_PREFIX]) {
      acknowledge(
        this.role!,
        `AwsSolutions-IAM5[${arnFinding(bucket, `/${prefix}*`)}]`,
        `Read-only: captures and feedback are created at run time under date partitions of ${prefix}; the grant is limited to that prefix.`,
      );
    }
  }

  /** Writes users' corrections, `feedback/*`, and nothing else: no read, no list, no delete. */
  bindFeedbackWriter(bucket: s3.IBucket): void {
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${FEEDBACK_PREFIX}*`)] }),
    );
    acknowledge(
      this.role!,
      `AwsSolutions-IAM5[${arnFinding(bucket, `/${FEEDBACK_PREFIX}*`)}]`,
      'One object per prediction id is created at run time under feedback/; the grant is write-only and limited to that prefix.',
    );
  }

  /**
   * Reads captures, feedback and models, and writes each version's live
   * summary, `models/<version>/live.json`, and nothing else. ListBucket is not
   * narrowed by prefix: what it would hide is the key names of datasets/, while
   * a prefix condition could turn S3's 404 for a missing model file into a 403.
   */
  bindLiveSummary(bucket: s3.IBucket): void {
    this.bindLiveDataReader(bucket, [bucket.arnForObjects(`${MODELS_PREFIX}*/${LIVE_FILE}`)]);
    acknowledge(
      this.role!,
      `AwsSolutions-IAM5[${arnFinding(bucket, `/${MODELS_PREFIX}*/${LIVE_FILE}`)}]`,
      'Each model version gets its own live summary; the write is limited to that one file name under models/.',
    );
  }

  /** Submits training jobs to this queue with this job definition, and reads their status. */
  bindTrainingJobs(queue: batch.IJobQueue, jobDefinition: batch.IJobDefinition): void {
    this.addEnvironment('JOB_QUEUE', queue.jobQueueArn);
    this.addEnvironment('JOB_DEFINITION', jobDefinition.jobDefinitionArn);
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['batch:SubmitJob'],
        resources: [queue.jobQueueArn, jobDefinition.jobDefinitionArn],
      }),
    );
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['batch:DescribeJobs'], resources: ['*'] }));
    acknowledge(
      this.role!,
      'AwsSolutions-IAM5[Resource::*]',
      'batch:DescribeJobs supports no resource-level permissions; the handler answers only for jobs of its own queue.',
    );
  }

  private acknowledgeModelsPrefix(bucket: s3.IBucket): void {
    acknowledge(
      this.role!,
      `AwsSolutions-IAM5[${arnFinding(bucket, '/models/*')}]`,
      'Model versions are created at run time under models/; the grant is limited to that prefix.',
    );
  }
}

/** Shared with the training job's role, which promotes too. */
export function acknowledgeAuditPrefix(role: iam.IRole, bucket: s3.IBucket): void {
  acknowledge(
    role,
    `AwsSolutions-IAM5[${arnFinding(bucket, `/${AUDIT_PREFIX}*`)}]`,
    'Write-only: one audit record per pointer change is created at run time under audit/pointer/; the grant is limited to that prefix.',
  );
}
