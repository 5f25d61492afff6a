/**
 * Capture delivery: the predict function prints one JSON line per captured
 * prediction (`functions/lib/live/capture-sink.ts`); a subscription filter on
 * its log group sends those lines, and only those, to a Firehose stream that
 * writes them to the bucket as gzipped JSON lines under
 * `captures/dt=YYYY-MM-DD/`. The handler never waits on this path.
 *
 * The stream is the L1 resource: the L2 S3 destination grants its role read,
 * write and delete on the whole bucket, and this role may only write captures.
 */
import { Stack, type Duration, type RemovalPolicy, type Size } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CAPTURES_PREFIX } from '#lib/live/records';
import { acknowledge, arnFinding } from './nag.ts';

/** Where Firehose puts what it could not process, by error type, so a bad batch is kept and seen. */
export const CAPTURE_ERRORS_PREFIX = 'captures-errors/';

/** Matches the capture lines and no other log line: only they carry `"type": "capture"`. */
export const CAPTURE_FILTER = logs.FilterPattern.stringValue('$.type', '=', 'capture');

export interface CaptureDeliveryProps {
  bucket: s3.IBucket;
  /** The predict function's log group. */
  source: logs.ILogGroup;
  bufferSize: Size;
  bufferInterval: Duration;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

export class CaptureDelivery extends Construct {
  readonly stream: firehose.CfnDeliveryStream;
  /** Firehose's role: writes captures/ and captures-errors/. */
  readonly deliveryRole: iam.Role;
  /** CloudWatch Logs' role: puts records into this stream. */
  readonly subscriptionRole: iam.Role;

  constructor(scope: Construct, id: string, props: CaptureDeliveryProps) {
    super(scope, id);
    const { bucket } = props;
    const stack = Stack.of(this);

    this.deliveryRole = new iam.Role(this, 'DeliveryRole', {
      assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'digitnet capture delivery: writes captures/ and captures-errors/ in the bucket, nothing else',
    });
    const prefixes = [CAPTURES_PREFIX, CAPTURE_ERRORS_PREFIX];
    // The actions AWS documents for an S3 destination, less the reads (GetObject, ListBucket) delivery never makes.
    this.deliveryRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
        resources: prefixes.map((prefix) => bucket.arnForObjects(`${prefix}*`)),
      }),
    );
    this.deliveryRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        resources: [bucket.bucketArn],
      }),
    );
    for (const prefix of prefixes) {
      acknowledge(
        this.deliveryRole,
        `AwsSolutions-IAM5[${arnFinding(bucket, `/${prefix}*`)}]`,
        `Firehose names its objects at delivery time under ${prefix}; the grant is write-only and limited to that prefix.`,
      );
    }

    // Delivery failures (a refused write, a throttled bucket) are reported only here.
    const errors = new logs.LogGroup(this, 'DeliveryErrors', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    const errorStream = new logs.LogStream(this, 'DeliveryErrorStream', {
      logGroup: errors,
      removalPolicy: props.removalPolicy,
    });
    errors.grantWrite(this.deliveryRole);

    this.stream = new firehose.CfnDeliveryStream(this, 'Stream', {
      deliveryStreamType: 'DirectPut',
      deliveryStreamEncryptionConfigurationInput: { keyType: 'AWS_OWNED_CMK' },
      extendedS3DestinationConfiguration: {
        bucketArn: bucket.bucketArn,
        roleArn: this.deliveryRole.roleArn,
        // Hive-style partitions (dt=…) that Athena and DuckDB read as a column, as the local stack writes them.
        prefix: `${CAPTURES_PREFIX}dt=!{timestamp:yyyy-MM-dd}/`,
        errorOutputPrefix: `${CAPTURE_ERRORS_PREFIX}!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
        compressionFormat: 'GZIP',
        bufferingHints: {
          sizeInMBs: props.bufferSize.toMebibytes(),
          intervalInSeconds: props.bufferInterval.toSeconds(),
        },
        // CloudWatch Logs sends gzipped envelopes of several log events; these turn them back
        // into the bare lines the function printed, one per line.
        processingConfiguration: {
          enabled: true,
          processors: [
            { type: 'Decompression', parameters: [{ parameterName: 'CompressionFormat', parameterValue: 'GZIP' }] },
            {
              type: 'CloudWatchLogProcessing',
              parameters: [{ parameterName: 'DataMessageExtraction', parameterValue: 'true' }],
            },
            { type: 'AppendDelimiterToRecord' },
          ],
        },
        cloudWatchLoggingOptions: {
          enabled: true,
          logGroupName: errors.logGroupName,
          logStreamName: errorStream.logStreamName,
        },
      },
    });
    // Firehose checks its role when the stream is created, so the role's policy must exist first.
    this.stream.node.addDependency(this.deliveryRole);

    this.subscriptionRole = new iam.Role(this, 'SubscriptionRole', {
      assumedBy: new iam.ServicePrincipal('logs.amazonaws.com', {
        conditions: { StringLike: { 'aws:SourceArn': stack.formatArn({ service: 'logs', resource: '*' }) } },
      }),
      description: 'digitnet capture delivery: CloudWatch Logs puts capture lines into the capture stream',
    });
    this.subscriptionRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['firehose:PutRecord', 'firehose:PutRecordBatch'],
        resources: [this.stream.attrArn],
      }),
    );
    const filter = new logs.SubscriptionFilter(this, 'Subscription', {
      logGroup: props.source,
      filterPattern: CAPTURE_FILTER,
      destination: { bind: () => ({ arn: this.stream.attrArn, role: this.subscriptionRole }) },
    });
    // CloudWatch Logs test-delivers to the stream when the filter is created.
    filter.node.addDependency(this.subscriptionRole);
  }
}
