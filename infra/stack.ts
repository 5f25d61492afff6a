/**
 * The whole service in one stack (DESIGN.md, "Cloud"): the bucket, the
 * predict, feedback and retrain functions behind an HTTP API, Batch training,
 * and live learning's capture delivery and scheduled live summary.
 */
import { ArnFormat, CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { ROLLOUT_POLICY_SETTINGS } from '#lib/config';
import { CAPTURES_PREFIX, FEEDBACK_PREFIX } from '#lib/live/records';
import { alarmName, MODEL_ALARM_IDS } from '#lib/rollout/cloudwatch-alarms';
import type { RolloutPolicy } from '#lib/rollout/decide';
import { LATEST_KEY } from '#lib/storage/store';
import { CAPTURE_ERRORS_PREFIX, CaptureDelivery } from './capture.ts';
import type { Reservation, StackConfig } from './config.ts';
import { DigitFunction } from './function.ts';
import { PREDICT_ASSET } from './lambda-bundle.ts';
import { Monitoring } from './monitoring.ts';
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
  readonly feedbackFunction: DigitFunction;
  readonly liveFunction: DigitFunction;
  readonly rolloutFunction: DigitFunction;
  readonly api: apigw.HttpApi;
  readonly training: Training;
  readonly captures: CaptureDelivery;
  readonly monitoring: Monitoring;

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
        // What users drew and said is kept only this long; a version that stops being current
        // (expired, or feedback answered again) is gone a day later rather than kept for recovery.
        ...[CAPTURES_PREFIX, CAPTURE_ERRORS_PREFIX, FEEDBACK_PREFIX].map((prefix) => ({
          id: `expire-${prefix.slice(0, -1)}`,
          prefix,
          expiration: Duration.days(config.liveRetentionDays),
          noncurrentVersionExpiration: Duration.days(1),
        })),
      ],
      removalPolicy,
      autoDeleteObjects: !retain,
    });

    this.training = new Training(this, 'Training', {
      bucket: this.bucket,
      stage: config.stage,
      defaults: { arch: config.trainArch, epochs: config.trainEpochs, withFeedback: config.trainWithFeedback },
      vcpu: config.trainVcpu,
      memory: Size.mebibytes(Math.round(config.trainMemoryGiB * 1024)),
      timeout: Duration.minutes(config.trainTimeoutMinutes),
      logRetention,
      removalPolicy,
    });

    this.predictFunction = new DigitFunction(this, 'PredictFunction', {
      stage: config.stage,
      ...PREDICT_ASSET,
      description: 'digitnet: classify digits, report the serving model, serve the page',
      memoryMiB: config.predictMemoryMiB,
      timeout: Duration.seconds(config.predictTimeoutSeconds),
      reservedConcurrency: reserved(config.predictReservedConcurrency),
      logRetention,
      removalPolicy,
    });
    this.predictFunction.addEnvironment('MODEL_REFRESH_SECONDS', String(config.modelRefreshSeconds));
    this.predictFunction.addEnvironment('LOW_CONFIDENCE_THRESHOLD', String(config.lowConfidenceThreshold));
    this.predictFunction.bindModelsReadOnly(this.bucket);
    // Captures leave as log lines, which the subscription below ships to the bucket: the
    // function itself gets no write access, and its answers never wait on one.
    this.predictFunction.addEnvironment('CAPTURE_MODE', 'log');
    this.predictFunction.addEnvironment('CAPTURE_SAMPLE_RATE', String(config.captureSampleRate));
    this.captures = new CaptureDelivery(this, 'Captures', {
      bucket: this.bucket,
      source: this.predictFunction.logGroup,
      bufferSize: Size.mebibytes(config.captureBufferMiB),
      bufferInterval: Duration.seconds(config.captureBufferSeconds),
      logRetention,
      removalPolicy,
    });

    this.feedbackFunction = new DigitFunction(this, 'FeedbackFunction', {
      stage: config.stage,
      entry: 'functions/feedback/handler.ts',
      description: 'digitnet: record a user’s correction or confirmation of an answer',
      memoryMiB: 256,
      sourceMaps: true,
      // One small S3 write under the client's own timeouts (functions/lib/storage/objects.ts).
      timeout: Duration.seconds(10),
      reservedConcurrency: reserved(config.feedbackReservedConcurrency),
      logRetention,
      removalPolicy,
    });
    this.feedbackFunction.bindFeedbackWriter(this.bucket);

    this.liveFunction = new DigitFunction(this, 'LiveFunction', {
      stage: config.stage,
      entry: 'functions/live/handler.ts',
      description: 'digitnet: join captures with feedback and store each version’s live summary',
      // Reads every capture and feedback object of the retention period; nobody waits on it.
      memoryMiB: 1024,
      sourceMaps: true,
      timeout: Duration.minutes(15),
      logRetention,
      removalPolicy,
    });
    this.liveFunction.bindLiveSummary(this.bucket);
    // live.json counts low-confidence answers with the predict function's threshold.
    this.liveFunction.addEnvironment('LOW_CONFIDENCE_THRESHOLD', String(config.lowConfidenceThreshold));
    new events.Rule(this, 'LiveSummarySchedule', {
      description: 'digitnet: refresh each model version’s live summary (models/<version>/live.json)',
      schedule: events.Schedule.rate(Duration.minutes(config.liveSummaryIntervalMinutes)),
      targets: [new targets.LambdaFunction(this.liveFunction, { retryAttempts: 2, maxEventAge: Duration.hours(1) })],
    });

    this.retrainFunction = new DigitFunction(this, 'RetrainFunction', {
      stage: config.stage,
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

    this.rolloutFunction = new DigitFunction(this, 'RolloutFunction', {
      stage: config.stage,
      entry: 'functions/rollout/handler.ts',
      description: 'digitnet: promote, drop or roll back the candidate by the rollout policy, with an audit record',
      // Reads the captures and feedback since the candidate was set, then one pointer write.
      memoryMiB: 1024,
      sourceMaps: true,
      // No reserved concurrency: two runs at once are safe (the second's conditional write is refused) and rare.
      timeout: Duration.minutes(5),
      logRetention,
      removalPolicy,
    });
    for (const [key, { env }] of Object.entries(ROLLOUT_POLICY_SETTINGS))
      this.rolloutFunction.addEnvironment(env, String(config.rolloutPolicy[key as keyof RolloutPolicy]));
    this.rolloutFunction.bindRollout(
      this.bucket,
      LATEST_KEY,
      MODEL_ALARM_IDS.map((id) =>
        this.formatArn({
          service: 'cloudwatch',
          resource: 'alarm',
          resourceName: alarmName(config.stage, id),
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ),
    );
    const rolloutTarget = new targets.LambdaFunction(this.rolloutFunction, {
      retryAttempts: 2,
      maxEventAge: Duration.minutes(15),
    });
    new events.Rule(this, 'RolloutSchedule', {
      description: 'digitnet: apply the rollout policy to the candidate and the newly promoted version',
      schedule: events.Schedule.rate(Duration.minutes(config.rolloutIntervalMinutes)),
      targets: [rolloutTarget],
    });
    new events.Rule(this, 'RolloutOnAlarm', {
      description: 'digitnet: apply the rollout policy as soon as an alarm a model can cause goes off',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          alarmName: MODEL_ALARM_IDS.map((id) => alarmName(config.stage, id)),
          state: { value: ['ALARM'] },
        },
      },
      targets: [rolloutTarget],
    });

    const apiAccessLogs = new logs.LogGroup(this, 'ApiAccessLogs', { retention: logRetention, removalPolicy });
    this.api = this.httpApi(config, apiAccessLogs);

    this.monitoring = new Monitoring(this, 'Monitoring', {
      stage: config.stage,
      api: this.api,
      apiAccessLogs,
      functions: {
        predict: this.predictFunction,
        feedback: this.feedbackFunction,
        retrain: this.retrainFunction,
        live: this.liveFunction,
        // The safety net for rollouts: when it fails, nothing rolls back automatically.
        rollout: this.rolloutFunction,
      },
      jobQueue: this.training.queue,
      thresholds: config,
      ...(config.alarmEmail ? { alarmEmail: config.alarmEmail } : {}),
      removalPolicy,
    });

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
      description: 'Bucket with datasets/, models/, captures/ and feedback/',
    });
    new CfnOutput(this, 'JobQueueArn', {
      value: this.training.queue.jobQueueArn,
      description: 'Batch job queue for training',
    });
    new CfnOutput(this, 'JobDefinitionArn', {
      value: this.training.jobDefinition.jobDefinitionArn,
      description: 'Batch job definition for training',
    });
    new CfnOutput(this, 'DashboardName', {
      value: this.monitoring.dashboard.dashboardName,
      description: 'CloudWatch dashboard: traffic, latency, errors, confidence, live accuracy, training, drift',
    });
    new CfnOutput(this, 'DashboardUrl', {
      value: this.monitoring.dashboardUrl,
      description: 'The dashboard in the CloudWatch console',
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.monitoring.topic.topicArn,
      description: 'SNS topic every alarm notifies (subscribe to it, or set the alarmEmail context)',
    });
  }

  private httpApi(config: StackConfig, accessLogs: logs.ILogGroup): apigw.HttpApi {
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
    const stage = api.addStage('DefaultStage', {
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
            // The 429 metric filter (infra/monitoring.ts) takes its stage dimension from here.
            stage: config.stage,
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

    const [feedback] = api.addRoutes({
      path: '/feedback',
      methods: [apigw.HttpMethod.POST],
      integration: new HttpLambdaIntegration('Feedback', this.feedbackFunction),
    });
    acknowledge(
      feedback!,
      'AwsSolutions-APIG4',
      'Public by design: whoever got an answer may say whether it was right, without an account; the route has its own tighter throttle and the function a small reserved concurrency.',
    );
    // A route setting replaces the stage's default for that route; CloudFormation refuses one
    // for a route that does not exist yet, hence the dependency.
    (stage.node.defaultChild as apigw.CfnStage).routeSettings = {
      'POST /feedback': {
        ThrottlingRateLimit: config.feedbackThrottleRateLimit,
        ThrottlingBurstLimit: config.feedbackThrottleBurstLimit,
      },
    };
    stage.node.addDependency(feedback!);

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
