/**
 * What an operator watches (DESIGN.md, "Cloud"): a CloudWatch dashboard, the
 * alarms, and one encrypted SNS topic they all notify, with an optional e-mail
 * subscription. The service's own figures are the EMF metrics the functions
 * and the training job print (functions/lib/metrics.ts, namespace `digitnet`,
 * dimensions `stage` and `component`); the rest are AWS's (API Gateway,
 * Lambda) and one metric filter on the API's access log for 429s, which HTTP
 * APIs do not count on their own.
 */
import { Aws, Duration, type RemovalPolicy } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import type * as batch from 'aws-cdk-lib/aws-batch';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { Stage } from '#lib/config';
import { type Component, NAMESPACE, NOT_DIGIT_METRICS } from '#lib/metrics';
import type { StackConfig } from './config.ts';

/** Every alarm and graph reads 5-minute periods, but drift and live accuracy, which are published hourly. */
const PERIOD = Duration.minutes(5);
const HOURLY = Duration.hours(1);
/**
 * A rate over fewer requests than this is noise (one low-confidence answer of
 * three is 33%), so the rate alarms read 0 below it.
 */
export const MIN_REQUESTS_FOR_RATE = 10;

/** Every alarm's name starts so; the topic lets only these alarms publish. */
const alarmPrefix = (stage: Stage) => `digitnet-${stage}-`;

export type AlarmThresholds = Pick<
  StackConfig,
  'alarmApi5xxPercent' | 'alarmPredictP99Ms' | 'alarmApiThrottles' | 'alarmLowConfidencePercent' | 'alarmDriftScore'
>;

export interface MonitoringProps {
  stage: Stage;
  api: apigw.HttpApi;
  /** The API's access log group, whose lines carry `status` and `stage`. */
  apiAccessLogs: logs.ILogGroup;
  functions: Record<'predict' | 'feedback' | 'retrain' | 'live' | 'rollout', lambda.IFunction>;
  jobQueue: batch.IJobQueue;
  thresholds: AlarmThresholds;
  alarmEmail?: string;
  removalPolicy: RemovalPolicy;
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly trainingFailed: events.Rule;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { stage, api, functions, thresholds } = props;

    // SNS's AWS-managed key cannot be used by CloudWatch alarms or EventBridge, so the topic has its own.
    const key = new kms.Key(this, 'TopicKey', {
      description: `digitnet (${stage}): encrypts the alarm topic`,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [
          new iam.ServicePrincipal('cloudwatch.amazonaws.com'),
          new iam.ServicePrincipal('events.amazonaws.com'),
        ],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: `digitnet ${stage} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    // The topic's own policy (enforceSSL creates one) replaces SNS's default, which is what lets a
    // same-account alarm publish; without this statement every alarm action would be refused.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: {
            'aws:SourceArn': `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:${alarmPrefix(stage)}*`,
          },
        },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));

    const ours = (name: string, component: Component, statistic: string, period = PERIOD) =>
      new cloudwatch.Metric({
        namespace: NAMESPACE,
        metricName: name,
        dimensionsMap: { stage, component },
        statistic,
        period,
      });
    /** Every series of one of our metrics split by a dimension, whatever its values (graphs only: alarms cannot search). */
    const search = (name: string, by: string, statistic: string, period = PERIOD) =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${NAMESPACE},stage,component,${by}} MetricName="${name}" stage="${stage}"', '${statistic}', ${period.toSeconds()})`,
        period,
      });

    const throttled = new logs.MetricFilter(this, 'ApiThrottledFilter', {
      logGroup: props.apiAccessLogs,
      filterPattern: logs.FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: NAMESPACE,
      metricName: 'ApiThrottled',
      metricValue: '1',
      dimensions: { stage: '$.stage' },
    });
    const apiThrottled = throttled.metric({ statistic: 'Sum', period: PERIOD, dimensionsMap: { stage } });

    const apiRequests = api.metricCount({ period: PERIOD, statistic: 'Sum' });
    const api5xx = api.metricServerError({ period: PERIOD, statistic: 'Sum' });
    const api4xx = api.metricClientError({ period: PERIOD, statistic: 'Sum' });
    const predictions = ours('Predictions', 'predict', 'Sum');
    const lowConfidence = ours('LowConfidence', 'predict', 'Sum');
    const latency = (statistic: string) => ours('Latency', 'predict', statistic);
    const drift = ours('DriftScore', 'drift', 'Maximum', HOURLY);
    const ratePercent = (part: cloudwatch.IMetric, whole: cloudwatch.IMetric, label: string) =>
      new cloudwatch.MathExpression({
        expression: `IF(whole >= ${MIN_REQUESTS_FOR_RATE}, 100 * part / whole, 0)`,
        usingMetrics: { part, whole },
        label,
        period: PERIOD,
      });
    const fns = Object.entries(functions) as [keyof MonitoringProps['functions'], lambda.IFunction][];
    const functionThrottles = new cloudwatch.MathExpression({
      expression: fns.map(([name]) => name).join(' + '),
      usingMetrics: Object.fromEntries(
        fns.map(([name, fn]) => [name, fn.metricThrottles({ period: PERIOD, statistic: 'Sum' })]),
      ),
      label: 'Lambda throttles, all functions',
      period: PERIOD,
    });

    const alarm = (
      id: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
    ): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, id, {
        alarmName: `${alarmPrefix(stage)}${id}`,
        alarmDescription: `digitnet (${stage}): ${description}`,
        metric,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods,
        datapointsToAlarm: evaluationPeriods,
        // No traffic, no training run, no drift score yet: nothing is wrong.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      created.addAlarmAction(new actions.SnsAction(this.topic));
      this.alarms.push(created);
      return created;
    };

    alarm(
      'Api5xxRate',
      ratePercent(api5xx, apiRequests, 'API 5xx, % of requests'),
      thresholds.alarmApi5xxPercent,
      `at least ${thresholds.alarmApi5xxPercent}% of API requests answered 5xx over 5 minutes (with ${MIN_REQUESTS_FOR_RATE} requests or more)`,
    );
    // Three periods in a row: one cold start (the first request loads the model) is not an incident.
    alarm(
      'PredictLatencyP99',
      latency('p99'),
      thresholds.alarmPredictP99Ms,
      `POST /predict p99 latency at or above ${thresholds.alarmPredictP99Ms} ms for 15 minutes`,
      3,
    );
    alarm(
      'ApiThrottled',
      apiThrottled,
      thresholds.alarmApiThrottles,
      `at least ${thresholds.alarmApiThrottles} requests throttled (429) by the API over 5 minutes`,
    );
    alarm(
      'FunctionThrottles',
      functionThrottles,
      1,
      'a function was throttled: its reserved concurrency (or the account’s) is exhausted',
    );
    for (const [name, fn] of fns) {
      const id = `${name[0]!.toUpperCase()}${name.slice(1)}FunctionErrors`;
      alarm(
        id,
        fn.metricErrors({ period: PERIOD, statistic: 'Sum' }),
        1,
        `the ${name} function failed (crash, timeout or failed start), not an error response it chose`,
      );
    }
    alarm(
      'LowConfidenceRate',
      ratePercent(lowConfidence, predictions, 'low-confidence answers, % of predictions'),
      thresholds.alarmLowConfidencePercent,
      `at least ${thresholds.alarmLowConfidencePercent}% of answers below the confidence threshold for 15 minutes (with ${MIN_REQUESTS_FOR_RATE} predictions or more a period)`,
      3,
    );
    alarm(
      'Drift',
      drift,
      thresholds.alarmDriftScore,
      `the input drift score reached ${thresholds.alarmDriftScore}: what people draw no longer looks like what the model was trained on`,
    );

    this.trainingFailed = new events.Rule(this, 'TrainingFailed', {
      description: `digitnet (${stage}): a training job failed after its retries`,
      eventPattern: {
        source: ['aws.batch'],
        detailType: ['Batch Job State Change'],
        detail: { status: ['FAILED'], jobQueue: [props.jobQueue.jobQueueArn] },
      },
      targets: [
        new targets.SnsTopic(this.topic, {
          message: events.RuleTargetInput.fromText(
            `digitnet (${stage}): training job ${events.EventField.fromPath('$.detail.jobName')} (${events.EventField.fromPath('$.detail.jobId')}) failed: ${events.EventField.fromPath('$.detail.statusReason')}`,
          ),
        }),
      ],
    });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `digitnet-${stage}`,
      defaultInterval: Duration.hours(24),
    });
    const graph = (title: string, left: cloudwatch.IMetric[], right: cloudwatch.IMetric[] = []) =>
      new cloudwatch.GraphWidget({ title, left, right, width: 8, height: 6 });
    this.dashboard.addWidgets(
      graph('Traffic', [apiRequests.with({ label: 'API requests' }), predictions.with({ label: 'predictions' })]),
      graph('POST /predict latency (ms)', [
        latency('p50').with({ label: 'p50' }),
        latency('p99').with({ label: 'p99' }),
        api.metricLatency({ period: PERIOD, statistic: 'p99', label: 'API p99 (all routes)' }),
      ]),
      graph(
        'Errors',
        [api4xx.with({ label: 'API 4xx' }), api5xx.with({ label: 'API 5xx' })],
        [search('Errors', 'code', 'Sum')],
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Throttles',
        [apiThrottled.with({ label: 'API 429' })],
        fns.map(([name, fn]) => fn.metricThrottles({ period: PERIOD, statistic: 'Sum', label: name })),
      ),
      graph(
        'Cold starts',
        (['predict', 'feedback', 'retrain'] as const).map((c) => ours('ColdStart', c, 'Sum').with({ label: c })),
      ),
      graph(
        'Confidence',
        [ratePercent(lowConfidence, predictions, 'low-confidence %')],
        [ours('Confidence', 'predict', 'Average').with({ label: 'mean confidence' })],
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Live accuracy by version (feedback; leans low)',
        [search('LiveAccuracy', 'modelVersion', 'Average', HOURLY)],
        [search('LiveFeedback', 'modelVersion', 'Maximum', HOURLY)],
      ),
      graph(
        'Training runs',
        [search('TestAccuracy', 'arch', 'Maximum', HOURLY), search('LiveHoldoutAccuracy', 'arch', 'Maximum', HOURLY)],
        [
          ours('GatePassed', 'train', 'SampleCount', HOURLY).with({ label: 'runs' }),
          ours('GatePassed', 'train', 'Sum', HOURLY).with({ label: 'passed the gate' }),
          ours('Promoted', 'train', 'Sum', HOURLY).with({ label: 'promoted' }),
        ],
      ),
      graph('Input drift (DriftScore)', [drift.with({ label: 'drift score' })]),
    );
    const notDigit = ours('NotDigit', 'predict', 'Sum');
    this.dashboard.addWidgets(
      graph(
        'Not a digit (answers flagged, by reason)',
        Object.entries(NOT_DIGIT_METRICS).map(([reason, metric]) =>
          ours(metric, 'predict', 'Sum').with({ label: reason }),
        ),
        [ratePercent(notDigit, predictions, 'not a digit, % of predictions')],
      ),
      graph('Numbers read (number mode)', [ours('Numbers', 'predict', 'Sum').with({ label: 'numbers' })]),
      graph('Seconds per training epoch', [search('EpochSeconds', 'arch', 'Maximum', HOURLY)]),
    );
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 6 }),
    );
  }

  /** The dashboard in the console of the stack's region. */
  get dashboardUrl(): string {
    return `https://${Aws.REGION}.console.aws.amazon.com/cloudwatch/home?region=${Aws.REGION}#dashboards:name=${this.dashboard.dashboardName}`;
  }
}
