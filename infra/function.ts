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
import { acknowledge, arnFinding } from './nag.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/** tfjs-backend-wasm picks one of these at run time (plain, SIMD, threaded SIMD), so all three ship. */
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];

export interface DigitFunctionProps {
  /** Entry file, relative to the repository root. */
  entry: string;
  memoryMiB: number;
  timeout: Duration;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
  /** Files copied into the asset after bundling: repository-relative source → asset-relative destination. */
  extraFiles?: Record<string, string>;
  /**
   * Ship a source map and have Node apply it to stack traces. Loading the map
   * costs ~25 ms of every cold start, so a function whose cold start matters
   * goes without; `keepNames` still names each function in its traces.
   */
  sourceMaps: boolean;
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
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: props.logRetention, removalPolicy: props.removalPolicy });
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
      environment: props.sourceMaps ? { NODE_OPTIONS: '--enable-source-maps' } : {},
      bundling: {
        // The same tsconfig as the editor and the tests, so the bundle compiles what was type-checked.
        tsconfig: path.join(REPO_ROOT, 'tsconfig.json'),
        target: 'node22',
        // ESM matches the source ("type": "module") and lets the code use import.meta.url to find its files.
        format: OutputFormat.ESM,
        // tfjs-backend-wasm's Emscripten glue uses require() and __dirname, which ESM output lacks.
        banner: [
          "import { createRequire } from 'module'; import { fileURLToPath } from 'url'; import { dirname } from 'path';",
          'const require = createRequire(import.meta.url); const __filename = fileURLToPath(import.meta.url); const __dirname = dirname(__filename);',
        ].join(' '),
        // Prefer packages' ESM builds, which tree-shake better than their CommonJS ones.
        mainFields: ['module', 'main'],
        // Smaller asset, faster cold start; the source map keeps traces readable.
        minify: true,
        // Minified class names would turn "BadRequestError" into "Pf" in the logs.
        keepNames: true,
        sourceMap: props.sourceMaps,
        // Keeps the map small: traces need line numbers, not the source text.
        sourcesContent: false,
        // Bundles our pinned AWS SDK instead of the runtime's, so the tested version is the one that runs.
        bundleAwsSDK: true,
        // tfjs-core's fetch fallback for runtimes without a global fetch, which Node 22 has: leaving it
        // out saves parsing its 280 KB of Unicode tables at every cold start (same as scripts/build.ts).
        externalModules: ['node-fetch'],
        commandHooks: props.extraFiles ? copyHooks(props.extraFiles) : undefined,
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
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects('models/*')] }));
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    this.acknowledgeModelsPrefix(bucket);
  }

  /**
   * Reads model versions and rewrites the serving pointer (promotion,
   * rollback). ListBucket lets ModelStore list versions and makes S3 answer a
   * missing key with 404 instead of 403; key names here are not secret.
   */
  bindModelsPromoter(bucket: s3.IBucket, latestKey: string): void {
    this.addEnvironment('BUCKET', bucket.bucketName);
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [bucket.arnForObjects('models/*')] }));
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(latestKey)] }));
    this.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    this.acknowledgeModelsPrefix(bucket);
  }

  /** Submits training jobs to this queue with this job definition, and reads their status. */
  bindTrainingJobs(queue: batch.IJobQueue, jobDefinition: batch.IJobDefinition): void {
    this.addEnvironment('JOB_QUEUE', queue.jobQueueArn);
    this.addEnvironment('JOB_DEFINITION', jobDefinition.jobDefinitionArn);
    this.addToRolePolicy(
      new iam.PolicyStatement({ actions: ['batch:SubmitJob'], resources: [queue.jobQueueArn, jobDefinition.jobDefinitionArn] }),
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
