/**
 * The whole service in one stack (DESIGN.md, "Cloud"): the bucket, the
 * predict and retrain functions behind an HTTP API, and Batch training.
 */
import { CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { LATEST_KEY } from '#lib/storage/store';
import type { Reservation, StackConfig } from './config.ts';
import { DigitFunction } from './function.ts';
import { PREDICT_ASSET } from './lambda-bundle.ts';
import { acknowledge } from './nag.ts';
import { Training } from './training.ts';

const reserved = (reservation: Reservation) => (reservation === 'off' ? undefined : reservation);

export interface DigitnetStackProps extends StackProps {
  config: StackConfig;
}

export class DigitnetStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly predictFunction: DigitFunction;
  readonly retrainFunction: DigitFunction;
  readonly api: apigw.HttpApi;
  readonly training: Training;

  constructor(scope: Construct, id: string, props: DigitnetStackProps) {
    super(scope, id, props);
    const { config } = props;
    // prod keeps its data and logs when the stack is deleted; other stages clean up after themselves.
    const retain = config.stage === 'prod';
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const logRetention = config.logRetentionDays as logs.RetentionDays;

    // Who read or wrote which object of the model bucket, kept as long as the other logs.
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(config.logRetentionDays) }],
      removalPolicy,
      autoDeleteObjects: !retain,
    });

    this.bucket = new s3.Bucket(this, 'Bucket', {
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'bucket/',
      lifecycleRules: [
        {
          id: 'expire-noncurrent-versions',
          // An overwritten pointer or dataset file stays recoverable this long, then stops costing storage.
          noncurrentVersionExpiration: Duration.days(config.noncurrentVersionExpiryDays),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy,
      autoDeleteObjects: !retain,
    });

    this.training = new Training(this, 'Training', {
      bucket: this.bucket,
      defaults: { arch: config.trainArch, epochs: config.trainEpochs, withFeedback: config.trainWithFeedback },
      vcpu: config.trainVcpu,
      memory: Size.mebibytes(Math.round(config.trainMemoryGiB * 1024)),
      timeout: Duration.minutes(config.trainTimeoutMinutes),
      logRetention,
      removalPolicy,
    });

    this.predictFunction = new DigitFunction(this, 'PredictFunction', {
      ...PREDICT_ASSET,
      description: 'digitnet: classify digits, report the serving model, serve the page',
      memoryMiB: config.predictMemoryMiB,
      timeout: Duration.seconds(config.predictTimeoutSeconds),
      reservedConcurrency: reserved(config.predictReservedConcurrency),
      logRetention,
      removalPolicy,
    });
    this.predictFunction.addEnvironment('MODEL_REFRESH_SECONDS', String(config.modelRefreshSeconds));
    this.predictFunction.bindModelsReadOnly(this.bucket);

    this.retrainFunction = new DigitFunction(this, 'RetrainFunction', {
      entry: 'functions/retrain/handler.ts',
      description: 'digitnet: submit and follow training jobs, promote or roll back model versions',
      memoryMiB: 512,
      sourceMaps: true,
      // Promotion reads a version's weights back before writing the pointer; API Gateway gives up at 30 s.
      timeout: Duration.seconds(25),
      reservedConcurrency: reserved(config.retrainReservedConcurrency),
      logRetention,
      removalPolicy,
    });
    this.retrainFunction.bindModelsPromoter(this.bucket, LATEST_KEY);
    this.retrainFunction.bindTrainingJobs(this.training.queue, this.training.jobDefinition);

    this.api = this.httpApi(config, logRetention, removalPolicy);

    if (config.weeklyRetrain) {
      const rule = new events.Rule(this, 'WeeklyRetrain', {
        description: `digitnet: weekly training run (${config.trainArch}, ${config.trainEpochs} epochs${config.trainWithFeedback ? ', with feedback' : ''}), promoted only if it passes the quality gate`,
        schedule: events.Schedule.cron({ weekDay: 'SUN', hour: '3', minute: '0' }),
      });
      rule.addTarget(
        new targets.BatchJob(
          this.training.queue.jobQueueArn,
          this.training.queue,
          this.training.jobDefinition.jobDefinitionArn,
          this.training.jobDefinition,
          { jobName: 'digitnet-weekly-retrain', retryAttempts: 2, maxEventAge: Duration.hours(6) },
        ),
      );
    }

    new CfnOutput(this, 'ApiUrl', {
      value: `${this.api.apiEndpoint}/`,
      description: 'Base URL of the HTTP API (the page is at /)',
    });
    new CfnOutput(this, 'BucketName', {
      value: this.bucket.bucketName,
      description: 'Bucket with datasets/ and models/',
    });
    new CfnOutput(this, 'JobQueueArn', {
      value: this.training.queue.jobQueueArn,
      description: 'Batch job queue for training',
    });
    new CfnOutput(this, 'JobDefinitionArn', {
      value: this.training.jobDefinition.jobDefinitionArn,
      description: 'Batch job definition for training',
    });
  }

  private httpApi(config: StackConfig, logRetention: logs.RetentionDays, removalPolicy: RemovalPolicy): apigw.HttpApi {
    const api = new apigw.HttpApi(this, 'Api', {
      apiName: `digitnet-${config.stage}`,
      description: 'digitnet: digit classification; training and promotion need IAM (SigV4) credentials',
      // The stage is added below, to set its throttling and access logs.
      createDefaultStage: false,
      corsPreflight: {
        allowOrigins: config.corsOrigins,
        allowMethods: [apigw.CorsHttpMethod.GET, apigw.CorsHttpMethod.POST],
        allowHeaders: ['content-type', 'authorization', 'x-amz-date', 'x-amz-security-token', 'x-amz-content-sha256'],
        maxAge: Duration.hours(1),
      },
    });
    const accessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    api.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.throttleRateLimit, burstLimit: config.throttleBurstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        // HTTP API variables as JSON lines; the caller's ARN is set on the IAM-authorised routes.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            caller: '$context.identity.userArn',
            route: '$context.routeKey',
            status: '$context.status',
            bytes: '$context.responseLength',
            ms: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });

    const predict = new HttpLambdaIntegration('Predict', this.predictFunction);
    const publicRoutes = [
      ...api.addRoutes({ path: '/predict', methods: [apigw.HttpMethod.POST], integration: predict }),
      ...api.addRoutes({ path: '/model', methods: [apigw.HttpMethod.GET], integration: predict }),
      ...api.addRoutes({ path: '/model/report', methods: [apigw.HttpMethod.GET], integration: predict }),
      ...api.addRoutes({ path: '/health', methods: [apigw.HttpMethod.GET], integration: predict }),
      ...api.addRoutes({ path: '/', methods: [apigw.HttpMethod.GET], integration: predict }),
    ];
    for (const route of publicRoutes) {
      acknowledge(
        route,
        'AwsSolutions-APIG4',
        'Public by design: classifying a digit, the model card and report, the health check and the page need no identity; stage throttling bounds abuse.',
      );
    }

    const retrain = new HttpLambdaIntegration('Retrain', this.retrainFunction);
    const operator = new HttpIamAuthorizer();
    api.addRoutes({ path: '/train', methods: [apigw.HttpMethod.POST], integration: retrain, authorizer: operator });
    api.addRoutes({
      path: '/train/{jobId}',
      methods: [apigw.HttpMethod.GET],
      integration: retrain,
      authorizer: operator,
    });
    api.addRoutes({ path: '/promote', methods: [apigw.HttpMethod.POST], integration: retrain, authorizer: operator });
    return api;
  }
}
