/**
 * Training on AWS Batch (Fargate): a VPC without NAT, a compute environment,
 * a job queue, and a job definition whose image is built from
 * infra/train.Dockerfile. The job role can read the dataset, captures and
 * feedback, write models, and can delete nothing.
 */
import { IgnoreMode, Stack, type Duration, type RemovalPolicy, type Size } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CAPTURES_PREFIX, FEEDBACK_PREFIX } from '#lib/live/records';
import type { Stage } from '#lib/config';
import { AUDIT_PREFIX } from '#lib/storage/audit';
import { acknowledgeAuditPrefix } from './function.ts';
import { REPO_ROOT } from './lambda-bundle.ts';
import { acknowledge, arnFinding } from './nag.ts';

export const TRAIN_DOCKERFILE = 'infra/train.Dockerfile';

export interface TrainingProps {
  bucket: s3.IBucket;
  /** STAGE: the `stage` dimension of the job's metrics. */
  stage: Stage;
  /** What a job trains when submitted without overrides (the weekly schedule). */
  defaults: { arch: string; epochs: number; withFeedback: boolean };
  vcpu: number;
  memory: Size;
  timeout: Duration;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

export class Training extends Construct {
  readonly queue: batch.JobQueue;
  readonly jobDefinition: batch.EcsJobDefinition;
  readonly jobRole: iam.Role;

  constructor(scope: Construct, id: string, props: TrainingProps) {
    super(scope, id);

    // Public subnets and a public IP per task instead of private subnets behind
    // a NAT gateway: the tasks only make outbound calls (ECR, S3, CloudWatch),
    // their security group admits nothing inbound, and a NAT gateway would cost
    // more per month than the training itself.
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
    });
    // Free, and keeps dataset and model traffic to S3 on the AWS network.
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    acknowledge(
      vpc,
      'AwsSolutions-VPC7',
      'The VPC carries only outbound calls of short training tasks and admits nothing inbound; their S3 access is in the bucket’s server access logs.',
    );

    const computeEnvironment = new batch.FargateComputeEnvironment(this, 'Compute', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      // Two jobs at a time at most: bounds the bill if something submits in a loop.
      maxvCpus: Math.ceil(props.vcpu * 2),
    });
    this.queue = new batch.JobQueue(this, 'Queue', {
      computeEnvironments: [{ computeEnvironment, order: 1 }],
    });

    this.jobRole = new iam.Role(this, 'JobRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description:
        'digitnet training job: reads the MNIST dataset, captures and feedback, writes model versions, the serving pointer and its audit records; deletes nothing',
    });
    const { bucket } = props;
    this.jobRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [bucket.arnForObjects('models/*')],
      }),
    );
    // PutObject on the dataset prefix lets the first run seed the bucket with the
    // md5-verified download, so later runs do not depend on the upstream mirror.
    // An overwrite cannot lose data: the bucket is versioned and every read
    // re-checks the md5 of each file.
    this.jobRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: [bucket.arnForObjects('datasets/mnist/*')],
      }),
    );
    // A promotion's audit record (ModelStore writes it after the pointer): write only.
    this.jobRole.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [bucket.arnForObjects(`${AUDIT_PREFIX}*`)] }),
    );
    acknowledgeAuditPrefix(this.jobRole, bucket);
    // Users' captured inputs and their corrections, for `--with-feedback`: read only.
    this.jobRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [CAPTURES_PREFIX, FEEDBACK_PREFIX].map((prefix) => bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    // The job lists the dataset, model, capture and feedback prefixes, and ModelStore needs S3 to
    // answer a missing key with 404, which S3 does only for callers that may list.
    this.jobRole.addToPolicy(new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }));
    acknowledge(
      this.jobRole,
      `AwsSolutions-IAM5[${arnFinding(bucket, '/models/*')}]`,
      'Model versions are created at run time under models/; the grant is limited to that prefix.',
    );
    acknowledge(
      this.jobRole,
      `AwsSolutions-IAM5[${arnFinding(bucket, '/datasets/mnist/*')}]`,
      'The four MNIST files live under datasets/mnist/; the grant is limited to that prefix.',
    );
    for (const prefix of [CAPTURES_PREFIX, FEEDBACK_PREFIX]) {
      acknowledge(
        this.jobRole,
        `AwsSolutions-IAM5[${arnFinding(bucket, `/${prefix}*`)}]`,
        `Read-only: captures and feedback are created at run time under date partitions of ${prefix}; the grant is limited to that prefix.`,
      );
    }

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const container = new batch.EcsFargateContainerDefinition(this, 'Container', {
      image: ecs.ContainerImage.fromAsset(REPO_ROOT, {
        file: TRAIN_DOCKERFILE,
        // tfjs-node ships prebuilt native TensorFlow for linux x86-64; pinning the
        // platform also makes an ARM laptop build the image the tasks will run.
        platform: Platform.LINUX_AMD64,
        // .dockerignore at the repository root decides the context, as it does for `docker build`.
        ignoreMode: IgnoreMode.DOCKER,
      }),
      cpu: props.vcpu,
      memory: props.memory,
      fargateCpuArchitecture: ecs.CpuArchitecture.X86_64,
      fargateOperatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      // Needed to reach ECR and CloudWatch from a public subnet without a NAT gateway.
      assignPublicIp: true,
      jobRole: this.jobRole,
      environment: {
        BUCKET: bucket.bucketName,
        ARCH: props.defaults.arch,
        EPOCHS: String(props.defaults.epochs),
        WITH_FEEDBACK: String(props.defaults.withFeedback),
        STAGE: props.stage,
        // Off by default outside Lambda; CloudWatch Logs turns the job's EMF lines into metrics too.
        METRICS: 'emf',
        // Fargate sets it too, but only by undocumented habit; without it the S3 client cannot start.
        AWS_REGION: Stack.of(this).region,
      },
      logging: ecs.LogDriver.awsLogs({ logGroup, streamPrefix: 'train' }),
    });
    this.jobDefinition = new batch.EcsJobDefinition(this, 'JobDefinition', {
      container,
      timeout: props.timeout,
      retryAttempts: 2,
      // Evaluated in order, first match wins: an image that cannot be pulled will
      // not be pullable a minute later either, so stop; any other failure
      // (a crash, a transient S3 or network error) gets one more attempt.
      retryStrategies: [
        batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.CANNOT_PULL_CONTAINER),
        batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.NON_ZERO_EXIT_CODE),
      ],
      propagateTags: true,
    });
    acknowledge(
      container.executionRole,
      'AwsSolutions-IAM5[Resource::*]',
      'ecr:GetAuthorizationToken supports no resource-level permissions; image pulls are limited to the asset repository.',
    );
  }
}
