/**
 * The CDK stack, proven offline: one synthesis with real bundling shared by
 * most tests, and quick ones (bundling skipped) for other contexts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Stack, type CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { readConfig } from '#lib/config';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { buildApp } from '../infra/app.ts';
import { readStackConfig } from '../infra/config.ts';
import { LAMBDA_ESBUILD, WASM_FILES } from '../infra/lambda-bundle.ts';
import type { DigitFunction } from '../infra/function.ts';
import type { DigitnetStack } from '../infra/stack.ts';
import { TRAIN_DOCKERFILE } from '../infra/training.ts';
import { buildPredict } from '../scripts/build.ts';
import { mnistDir, repoRoot, tempDir, testBucket } from './support/env.ts';

const run = promisify(execFile);

/** The feature flags the CLI passes from cdk.json, so tests synthesize what `cdk deploy` would. */
const cdkJson = JSON.parse(readFileSync(path.join(repoRoot, 'cdk.json'), 'utf8')) as {
  app: string;
  context: Record<string, unknown>;
};

function synth(context: Record<string, unknown> = {}, { bundle = false } = {}) {
  const { app, stack } = buildApp({
    context: { ...cdkJson.context, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }), ...context },
  });
  return { app, stack, template: Template.fromStack(stack) };
}

const main = synth({}, { bundle: true });
const { stack, template } = main;

/** The logical id of an L1 resource, or of an L2 construct's resource. */
function logicalId(construct: IConstruct): string {
  return Stack.of(construct).resolve(((construct.node.defaultChild ?? construct) as CfnElement).logicalId) as string;
}

const arn = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });
const objects = (construct: IConstruct, pattern: string) => ({ 'Fn::Join': ['', [arn(construct), `/${pattern}`]] });

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
}

/** Every statement of every identity policy attached to a role, inline or separate. */
function statementsOf(t: Template, role: IConstruct): Statement[] {
  const ref = { Ref: logicalId(role) };
  const attached = Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(ref)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
  const roleProps = t.findResources('AWS::IAM::Role')[logicalId(role)]!.Properties;
  const inline = ((roleProps.Policies ?? []) as { PolicyDocument: { Statement: Statement[] } }[]).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
  return [...attached, ...inline];
}

const actionsOf = (statements: Statement[]) =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
const s3Statements = (statements: Statement[]) =>
  statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('s3:')));
const roleOf = (fn: DigitnetStack['predictFunction']) => fn.role!;

function managedPolicies(t: Template, role: IConstruct): unknown {
  return t.findResources('AWS::IAM::Role')[logicalId(role)]!.Properties.ManagedPolicyArns;
}

describe('bucket', () => {
  test('is versioned', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: Match.anyValue(),
    });
  });

  test('blocks every kind of public access', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: Match.anyValue(),
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
    });
  });

  test('is encrypted with S3-managed keys', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: Match.anyValue(),
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
    });
  });

  test('denies every request that does not use TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(stack.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Resource: [arn(stack.bucket), objects(stack.bucket, '*')],
          }),
        ]),
      },
    });
  });

  test('expires noncurrent object versions after 30 days by default', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: Match.anyValue(),
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 30 }, Status: 'Enabled' }),
        ]),
      },
    });
  });

  test('expires captures, capture errors and feedback after 90 days by default, and their old versions a day later', () => {
    const rules = template.findResources('AWS::S3::Bucket')[logicalId(stack.bucket)]!.Properties.LifecycleConfiguration
      .Rules as { Prefix?: string }[];
    assert.deepEqual(
      rules.filter((r) => r.Prefix),
      ['captures/', 'captures-errors/', 'feedback/'].map((prefix) => ({
        Id: `expire-${prefix.slice(0, -1)}`,
        Prefix: prefix,
        ExpirationInDays: 90,
        NoncurrentVersionExpiration: { NoncurrentDays: 1 },
        Status: 'Enabled',
      })),
    );
  });

  test('writes server access logs to the log bucket', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: Match.anyValue(),
      LoggingConfiguration: {
        DestinationBucketName: { Ref: Match.stringLikeRegexp('^AccessLogs') },
        LogFilePrefix: 'bucket/',
      },
    });
  });

  test('is deleted with the stack outside prod', () => {
    template.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({ VersioningConfiguration: Match.anyValue() }),
      DeletionPolicy: 'Delete',
      UpdateReplacePolicy: 'Delete',
    });
  });
});

describe('predict function', () => {
  test('runs Node.js 22 on arm64 from the bundled ESM entry', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
    });
  });

  test('gets the bucket name and the model refresh interval from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      Environment: {
        Variables: Match.objectLike({ BUCKET: { Ref: logicalId(stack.bucket) }, MODEL_REFRESH_SECONDS: '60' }),
      },
    });
  });

  test('captures every prediction as a log line by default, which it needs no permission to write', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      Environment: { Variables: Match.objectLike({ CAPTURE_MODE: 'log', CAPTURE_SAMPLE_RATE: '1' }) },
    });
  });

  test('does not load source maps, which would lengthen every cold start', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      Environment: { Variables: Match.objectLike({ NODE_OPTIONS: Match.absent() }) },
    });
  });

  test('has 1769 MB (one full vCPU, chosen by the cost bench) and a 10 s timeout by default', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      MemorySize: 1769,
      Timeout: 10,
    });
  });

  test('reserves 50 concurrent executions by default, so it can take no more of the account', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.predictFunction)),
      ReservedConcurrentExecutions: 50,
    });
  });

  test('logs to its own log group, kept for 30 days by default', () => {
    const fn = template.findResources('AWS::Lambda::Function')[logicalId(stack.predictFunction)]!;
    const logGroup = template.findResources('AWS::Logs::LogGroup')[fn.Properties.LoggingConfig.LogGroup.Ref];
    assert.equal(logGroup?.Properties.RetentionInDays, 30);
  });

  test('may read objects under models/ and list key names (so a missing pointer is a 404), nothing else in S3', () => {
    assert.deepEqual(s3Statements(statementsOf(template, roleOf(stack.predictFunction))), [
      { Effect: 'Allow', Action: 's3:GetObject', Resource: objects(stack.bucket, 'models/*') },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(stack.bucket) },
    ]);
  });

  test('can read neither captures nor feedback: its only object read is models/*', () => {
    const reads = statementsOf(template, roleOf(stack.predictFunction)).filter((s) =>
      actionsOf([s]).includes('s3:GetObject'),
    );
    assert.deepEqual(
      reads.map((s) => s.Resource),
      [objects(stack.bucket, 'models/*')],
    );
  });

  test('can neither write nor delete anything', () => {
    const actions = actionsOf(statementsOf(template, roleOf(stack.predictFunction)));
    assert.deepEqual(
      actions.filter((a) => /put|delete|\*/i.test(a) && a !== 'logs:PutLogEvents'),
      [],
    );
    assert.deepEqual(actions.sort(), ['logs:CreateLogStream', 'logs:PutLogEvents', 's3:GetObject', 's3:ListBucket']);
    assert.equal(managedPolicies(template, roleOf(stack.predictFunction)), undefined);
  });
});

describe('retrain function', () => {
  test('may submit jobs only to this queue with this job definition', () => {
    const submit = statementsOf(template, roleOf(stack.retrainFunction)).filter((s) =>
      actionsOf([s]).includes('batch:SubmitJob'),
    );
    assert.deepEqual(submit, [
      {
        Effect: 'Allow',
        Action: 'batch:SubmitJob',
        Resource: [
          { 'Fn::GetAtt': [logicalId(stack.training.queue), 'JobQueueArn'] },
          { Ref: logicalId(stack.training.jobDefinition) },
        ],
      },
    ]);
  });

  test('reads models/, writes only models/latest.json and its audit records, and deletes nothing', () => {
    assert.deepEqual(s3Statements(statementsOf(template, roleOf(stack.retrainFunction))), [
      { Effect: 'Allow', Action: 's3:GetObject', Resource: objects(stack.bucket, 'models/*') },
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: [objects(stack.bucket, 'audit/pointer/*'), objects(stack.bucket, 'models/latest.json')],
      },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(stack.bucket) },
    ]);
  });

  test('gets the queue and job definition ARNs from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.retrainFunction)),
      Environment: {
        Variables: Match.objectLike({
          BUCKET: { Ref: logicalId(stack.bucket) },
          JOB_QUEUE: { 'Fn::GetAtt': [logicalId(stack.training.queue), 'JobQueueArn'] },
          JOB_DEFINITION: { Ref: logicalId(stack.training.jobDefinition) },
        }),
      },
    });
  });

  test('reserves 2 concurrent executions by default, so a rollback runs however busy the account is', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.retrainFunction)),
      ReservedConcurrentExecutions: 2,
    });
  });

  test('maps stack traces to the TypeScript source', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(stack.retrainFunction)),
      Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
    });
  });
});

describe('capture delivery', () => {
  const { captures } = stack;
  const streamArn = { 'Fn::GetAtt': [logicalId(captures.stream), 'Arn'] };
  const predictLogGroup = () =>
    template.findResources('AWS::Lambda::Function')[logicalId(stack.predictFunction)]!.Properties.LoggingConfig
      .LogGroup;

  test('subscribes the capture stream to the predict function’s capture lines, and to nothing else', () => {
    const filters = Object.values(template.findResources('AWS::Logs::SubscriptionFilter')).map((f) => f.Properties);
    assert.deepEqual(filters, [
      {
        LogGroupName: predictLogGroup(),
        FilterPattern: '{ $.type = "capture" }',
        DestinationArn: streamArn,
        RoleArn: arn(captures.subscriptionRole),
      },
    ]);
  });

  test('CloudWatch Logs may only put records into the capture stream', () => {
    assert.deepEqual(statementsOf(template, captures.subscriptionRole), [
      { Effect: 'Allow', Action: ['firehose:PutRecord', 'firehose:PutRecordBatch'], Resource: streamArn },
    ]);
  });

  test('the subscription role can be assumed only by CloudWatch Logs of this account and region', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('CloudWatch Logs puts capture lines'),
      AssumeRolePolicyDocument: {
        Statement: [
          {
            Action: 'sts:AssumeRole',
            Effect: 'Allow',
            Principal: { Service: 'logs.amazonaws.com' },
            Condition: {
              StringLike: {
                'aws:SourceArn': {
                  'Fn::Join': [
                    '',
                    [
                      'arn:',
                      { Ref: 'AWS::Partition' },
                      ':logs:',
                      { Ref: 'AWS::Region' },
                      ':',
                      { Ref: 'AWS::AccountId' },
                      ':*',
                    ],
                  ],
                },
              },
            },
          },
        ],
        Version: '2012-10-17',
      },
    });
  });

  test('the stream writes gzipped objects under captures/dt=YYYY-MM-DD/, and what it cannot process under captures-errors/', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BucketARN: arn(stack.bucket),
        RoleARN: arn(captures.deliveryRole),
        Prefix: 'captures/dt=!{timestamp:yyyy-MM-dd}/',
        ErrorOutputPrefix: 'captures-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/',
        CompressionFormat: 'GZIP',
      }),
    });
  });

  test('the stream turns CloudWatch Logs’ gzipped envelopes back into the printed lines, one per line', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        ProcessingConfiguration: {
          Enabled: true,
          Processors: [
            { Type: 'Decompression', Parameters: [{ ParameterName: 'CompressionFormat', ParameterValue: 'GZIP' }] },
            {
              Type: 'CloudWatchLogProcessing',
              Parameters: [{ ParameterName: 'DataMessageExtraction', ParameterValue: 'true' }],
            },
            { Type: 'AppendDelimiterToRecord' },
          ],
        },
      }),
    });
  });

  test('the stream delivers every 5 MiB or 300 s by default, whichever comes first', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 300 },
      }),
    });
  });

  test('the stream is encrypted at rest and logs its delivery failures', () => {
    template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' },
      ExtendedS3DestinationConfiguration: Match.objectLike({
        CloudWatchLoggingOptions: { Enabled: true, LogGroupName: Match.anyValue(), LogStreamName: Match.anyValue() },
      }),
    });
  });

  test('Firehose may write only under captures/ and captures-errors/, and read or delete nothing', () => {
    const statements = statementsOf(template, captures.deliveryRole);
    assert.deepEqual(s3Statements(statements), [
      {
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:PutObject'],
        Resource: [objects(stack.bucket, 'captures-errors/*'), objects(stack.bucket, 'captures/*')],
      },
      {
        Effect: 'Allow',
        Action: ['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
        Resource: arn(stack.bucket),
      },
    ]);
    assert.deepEqual(actionsOf(statements).sort(), [
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:AbortMultipartUpload',
      's3:GetBucketLocation',
      's3:ListBucketMultipartUploads',
      's3:PutObject',
    ]);
  });

  test('the stream is created after its role’s policy, which Firehose checks when it starts', () => {
    const stream = template.findResources('AWS::KinesisFirehose::DeliveryStream')[logicalId(captures.stream)]!;
    assert.ok(
      (stream.DependsOn as string[]).includes(logicalId(captures.deliveryRole.node.findChild('DefaultPolicy'))),
    );
  });
});

describe('feedback function', () => {
  const role = () => roleOf(stack.feedbackFunction);

  test('may write objects under feedback/ and nothing else: no read, list or delete', () => {
    assert.deepEqual(s3Statements(statementsOf(template, role())), [
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objects(stack.bucket, 'feedback/*') },
    ]);
    assert.deepEqual(actionsOf(statementsOf(template, role())).sort(), [
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:PutObject',
    ]);
    assert.equal(managedPolicies(template, role()), undefined);
  });

  test('gets the bucket name from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(role()),
      Handler: 'index.handler',
      Environment: { Variables: Match.objectLike({ BUCKET: { Ref: logicalId(stack.bucket) } }) },
    });
  });

  test('reserves 10 concurrent executions by default, so a flood of corrections takes no more', () => {
    template.hasResourceProperties('AWS::Lambda::Function', { Role: arn(role()), ReservedConcurrentExecutions: 10 });
  });
});

describe('rollout function', () => {
  const role = () => roleOf(stack.rolloutFunction);
  const alarmArn = (id: string) => ({
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        ':cloudwatch:',
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        `:alarm:digitnet-dev-${id}`,
      ],
    ],
  });
  const MODEL_ALARMS = ['Api5xxRate', 'PredictLatencyP99', 'PredictFunctionErrors', 'LowConfidenceRate'];

  test('reads models, captures and feedback, writes only the pointer and audit records, and lists the bucket', () => {
    assert.deepEqual(s3Statements(statementsOf(template, role())), [
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [
          objects(stack.bucket, 'captures/*'),
          objects(stack.bucket, 'feedback/*'),
          objects(stack.bucket, 'models/*'),
        ],
      },
      {
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: [objects(stack.bucket, 'audit/pointer/*'), objects(stack.bucket, 'models/latest.json')],
      },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(stack.bucket) },
    ]);
  });

  test("may describe this stage's model alarms, named one by one, and nothing else in CloudWatch", () => {
    const statements = statementsOf(template, role()).filter((s) =>
      actionsOf([s]).some((a) => a.startsWith('cloudwatch:')),
    );
    assert.deepEqual(statements, [
      { Effect: 'Allow', Action: 'cloudwatch:DescribeAlarms', Resource: [...MODEL_ALARMS].sort().map(alarmArn) },
    ]);
  });

  test('can delete nothing and holds no other permission', () => {
    assert.deepEqual(actionsOf(statementsOf(template, role())).sort(), [
      'cloudwatch:DescribeAlarms',
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    assert.equal(managedPolicies(template, role()), undefined);
  });

  test('runs every 15 minutes by default', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: arn(stack.rolloutFunction) })],
    });
  });

  test('runs when one of the model alarms goes into ALARM', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.cloudwatch'],
        'detail-type': ['CloudWatch Alarm State Change'],
        detail: { alarmName: MODEL_ALARMS.map((id) => `digitnet-dev-${id}`), state: { value: ['ALARM'] } },
      },
      Targets: [Match.objectLike({ Arn: arn(stack.rolloutFunction) })],
    });
  });

  test('the alarms it reads are alarms the stack has', () => {
    for (const id of MODEL_ALARMS)
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `digitnet-dev-${id}` });
  });

  test('applies the default policy unless context sets it, and refuses a setting out of range', () => {
    const policyEnv = (built: ReturnType<typeof synth>) => {
      const resources = built.template.findResources('AWS::Lambda::Function', {
        Properties: { Role: arn(roleOf(built.stack.rolloutFunction)) },
      });
      const variables = Object.values(resources)[0]!.Properties.Environment.Variables as Record<string, string>;
      return Object.fromEntries(Object.entries(variables).filter(([name]) => name.startsWith('ROLLOUT_')));
    };
    assert.deepEqual(policyEnv(main), {
      ROLLOUT_MIN_SAMPLES: '500',
      ROLLOUT_MIN_LABELLED: '50',
      ROLLOUT_MIN_AGREEMENT: '0.97',
      ROLLOUT_TOLERANCE: '0.01',
      ROLLOUT_COOL_DOWN_MINUTES: '30',
      ROLLOUT_WATCH_MINUTES: '1440',
    });
    const set = policyEnv(synth({ rolloutMinSamples: '2000', rolloutTolerance: 0.02, rolloutCoolDownMinutes: '0' }));
    assert.deepEqual(
      [set.ROLLOUT_MIN_SAMPLES, set.ROLLOUT_TOLERANCE, set.ROLLOUT_COOL_DOWN_MINUTES],
      ['2000', '0.02', '0'],
    );
    assert.equal(readConfig(set).rollout.policy.minSamples, 2000, 'the function reads what the stack sets');
    for (const [key, bad] of [
      ['rolloutMinSamples', '0'],
      ['rolloutMinAgreement', '1.5'],
      ['rolloutWatchMinutes', 'a day'],
    ])
      assert.throws(() => buildApp({ context: { [key]: bad } }), new RegExp(`context "${key}" must be`));
  });

  test('context sets how often it runs, and refuses an interval outside 1 to 1440 minutes', () => {
    synth({ rolloutIntervalMinutes: '5' }).template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: Match.anyValue() })],
    });
    for (const bad of ['0', '1441', 'often'])
      assert.throws(
        () => buildApp({ context: { rolloutIntervalMinutes: bad } }),
        /context "rolloutIntervalMinutes" must be/,
      );
  });
});

describe('live summary', () => {
  const role = () => roleOf(stack.liveFunction);

  test('reads captures, feedback and models, writes only models/*/live.json and lists the bucket', () => {
    assert.deepEqual(s3Statements(statementsOf(template, role())), [
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [
          objects(stack.bucket, 'captures/*'),
          objects(stack.bucket, 'feedback/*'),
          objects(stack.bucket, 'models/*'),
        ],
      },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objects(stack.bucket, 'models/*/live.json') },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(stack.bucket) },
    ]);
  });

  test('can delete nothing and holds no other permission', () => {
    assert.deepEqual(actionsOf(statementsOf(template, role())).sort(), [
      'logs:CreateLogStream',
      'logs:PutLogEvents',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
    ]);
    assert.equal(managedPolicies(template, role()), undefined);
  });

  test('gets the bucket name from its environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(role()),
      Environment: { Variables: Match.objectLike({ BUCKET: { Ref: logicalId(stack.bucket) } }) },
    });
  });

  test('runs every hour by default', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: arn(stack.liveFunction) })],
    });
  });

  test('only the schedule may invoke it', () => {
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: arn(stack.liveFunction),
      Principal: 'events.amazonaws.com',
      SourceArn: Match.objectLike({ 'Fn::GetAtt': [Match.stringLikeRegexp('^LiveSummarySchedule'), 'Arn'] }),
    });
  });
});

describe('HTTP API', () => {
  for (const routeKey of [
    'POST /predict',
    'GET /model',
    'GET /model/report',
    'GET /health',
    'GET /',
    'POST /feedback',
  ]) {
    test(`${routeKey} is public`, () => {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey, AuthorizationType: 'NONE' });
    });
  }

  for (const routeKey of ['POST /train', 'GET /train/{jobId}', 'POST /promote']) {
    test(`${routeKey} requires IAM (SigV4) authorisation`, () => {
      template.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: routeKey, AuthorizationType: 'AWS_IAM' });
    });
  }

  test('has no route beyond the ones listed', () => {
    const keys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties.RouteKey);
    assert.deepEqual(keys.sort(), [
      'GET /',
      'GET /health',
      'GET /model',
      'GET /model/report',
      'GET /train/{jobId}',
      'POST /feedback',
      'POST /predict',
      'POST /promote',
      'POST /train',
    ]);
  });

  test('POST /feedback goes to the feedback function', () => {
    const route = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).find(
      (r) => r.Properties.RouteKey === 'POST /feedback',
    )!;
    const integrationId = (route.Properties.Target['Fn::Join'][1] as unknown[])[1] as { Ref: string };
    const integration = template.findResources('AWS::ApiGatewayV2::Integration')[integrationId.Ref]!;
    assert.deepEqual(integration.Properties.IntegrationUri, arn(stack.feedbackFunction));
  });

  test('throttles POST /feedback at 10 requests/s with bursts of 20 by default, tighter than the stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      RouteSettings: { 'POST /feedback': { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 } },
    });
  });

  test('creates the stage after the route its route setting names, which CloudFormation requires', () => {
    const [routeId] = Object.entries(template.findResources('AWS::ApiGatewayV2::Route')).find(
      ([, r]) => r.Properties.RouteKey === 'POST /feedback',
    )!;
    template.hasResource('AWS::ApiGatewayV2::Stage', { DependsOn: Match.arrayWith([routeId]) });
  });

  test('throttles the stage at 50 requests/s with bursts of 100 by default', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  test('writes access logs with the request id and caller', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: {
        DestinationArn: Match.anyValue(),
        Format: Match.stringLikeRegexp('\\$context\\.requestId.*\\$context\\.identity\\.userArn'),
      },
    });
  });

  test('answers CORS preflights for the page', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['*'],
        AllowMethods: ['GET', 'POST'],
        AllowHeaders: Match.arrayWith(['content-type', 'authorization']),
      }),
    });
  });
});

describe('training on Batch', () => {
  test('gives each attempt an explicit timeout of two hours', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', { Timeout: { AttemptDurationSeconds: 7200 } });
  });

  test('retries a non-zero exit once but stops when the image cannot be pulled', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      RetryStrategy: {
        Attempts: 2,
        EvaluateOnExit: [
          { Action: 'EXIT', OnReason: 'CannotPullContainerError:*' },
          { Action: 'RETRY', OnExitCode: '*' },
        ],
      },
    });
  });

  test('asks Fargate for 4 vCPU and 8 GiB by default', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      PlatformCapabilities: ['FARGATE'],
      ContainerProperties: Match.objectLike({
        ResourceRequirements: [
          { Type: 'MEMORY', Value: '8192' },
          { Type: 'VCPU', Value: '4' },
        ],
      }),
    });
  });

  test('runs the x86-64 image with a public IP so it needs no NAT gateway', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        NetworkConfiguration: { AssignPublicIp: 'ENABLED' },
        RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
      }),
    });
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
  });

  test('sends the job’s output to CloudWatch Logs', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        LogConfiguration: {
          LogDriver: 'awslogs',
          Options: Match.objectLike({ 'awslogs-group': { Ref: Match.stringLikeRegexp('^TrainingLogs') } }),
        },
      }),
    });
  });

  test('gives the job the bucket, its default architecture and epochs, and the region', () => {
    template.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        Environment: [
          { Name: 'BUCKET', Value: { Ref: logicalId(stack.bucket) } },
          { Name: 'ARCH', Value: 'cnn' },
          { Name: 'EPOCHS', Value: '12' },
          { Name: 'WITH_FEEDBACK', Value: 'false' },
          { Name: 'STAGE', Value: 'dev' },
          { Name: 'METRICS', Value: 'emf' },
          { Name: 'AWS_REGION', Value: { Ref: 'AWS::Region' } },
        ],
      }),
    });
  });

  test('lets the job role read and write models and the dataset, add audit records, read captures and feedback, and list the bucket', () => {
    assert.deepEqual(statementsOf(template, stack.training.jobRole), [
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject'],
        Resource: [objects(stack.bucket, 'datasets/mnist/*'), objects(stack.bucket, 'models/*')],
      },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: objects(stack.bucket, 'audit/pointer/*') },
      {
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: [objects(stack.bucket, 'captures/*'), objects(stack.bucket, 'feedback/*')],
      },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: arn(stack.bucket) },
    ]);
  });

  test('lets the job role delete nothing and write nothing outside models/, datasets/mnist/ and audit/pointer/', () => {
    const statements = statementsOf(template, stack.training.jobRole);
    assert.deepEqual(
      actionsOf(statements).filter((a) => /delete|\*/i.test(a)),
      [],
    );
    const writable = statements
      .filter((s) => actionsOf([s]).includes('s3:PutObject'))
      .flatMap((s) => s.Resource as unknown[]);
    assert.deepEqual(writable, [
      objects(stack.bucket, 'datasets/mnist/*'),
      objects(stack.bucket, 'models/*'),
      objects(stack.bucket, 'audit/pointer/*'),
    ]);
    assert.equal(managedPolicies(template, stack.training.jobRole), undefined);
  });

  test('the training image pins every base image by digest and runs as a non-root user', () => {
    const dockerfile = readFileSync(path.join(repoRoot, TRAIN_DOCKERFILE), 'utf8');
    const bases = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    assert.ok(bases.length > 0);
    for (const base of bases) assert.match(base!, /^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/);
    const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    assert.deepEqual(
      [...finalStage.matchAll(/^USER (\S+)/gm)].map((m) => m[1]),
      ['node'],
    );
  });

  test('has no weekly schedule unless the context asks for one', () => {
    const rules = Object.values(template.findResources('AWS::Events::Rule'));
    assert.deepEqual(
      rules.filter((r) => r.Properties.Targets.some((t: { BatchParameters?: unknown }) => t.BatchParameters)),
      [],
    );
  });
});

describe('metrics, alarms and dashboard', () => {
  const { monitoring } = stack;
  const topic = { Ref: logicalId(monitoring.topic) };
  const alarmProps = (name: string) => {
    const found = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties.AlarmName === `digitnet-dev-${name}`,
    );
    assert.equal(found.length, 1, `one alarm ${name}`);
    return found[0]!.Properties;
  };
  const ours = (name: string, component: string, stat: string, period = 300) => ({
    MetricStat: {
      Metric: {
        Namespace: 'digitnet',
        MetricName: name,
        Dimensions: [
          { Name: 'component', Value: component },
          { Name: 'stage', Value: 'dev' },
        ],
      },
      Period: period,
      Stat: stat,
    },
  });

  test('every function and the training job know their stage, the dimension of their metrics', () => {
    for (const fn of [stack.predictFunction, stack.feedbackFunction, stack.retrainFunction, stack.liveFunction]) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Role: arn(roleOf(fn)),
        Environment: { Variables: Match.objectLike({ STAGE: 'dev', METRICS: Match.absent() }) },
      });
    }
  });

  test('the predict and live functions count answers below 0.6 confidence as low by default, and context moves both', () => {
    const lowConfidence = (built: ReturnType<typeof synth>, fn: DigitFunction, value: string) =>
      built.template.hasResourceProperties('AWS::Lambda::Function', {
        Role: arn(roleOf(fn)),
        Environment: { Variables: Match.objectLike({ LOW_CONFIDENCE_THRESHOLD: value }) },
      });
    const moved = synth({ lowConfidenceThreshold: '0.75' });
    for (const pick of [(s: typeof stack) => s.predictFunction, (s: typeof stack) => s.liveFunction]) {
      lowConfidence(main, pick(stack), '0.6');
      lowConfidence(moved, pick(moved.stack), '0.75');
    }
  });

  test('no function gains a permission for metrics: they are log lines', () => {
    for (const fn of [stack.predictFunction, stack.feedbackFunction, stack.retrainFunction, stack.liveFunction]) {
      assert.deepEqual(
        actionsOf(statementsOf(template, roleOf(fn))).filter((a) => !a.startsWith('s3:') && !a.startsWith('batch:')),
        ['logs:CreateLogStream', 'logs:PutLogEvents'],
      );
    }
  });

  test('one SNS topic, encrypted with its own rotated key and TLS-only', () => {
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^MonitoringTopicKey'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      Description: 'digitnet (dev): encrypts the alarm topic',
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [topic],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: '*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  test('the key lets CloudWatch alarms and EventBridge publish to the topic, and no other service', () => {
    const key = Object.values(template.findResources('AWS::KMS::Key'))[0]!;
    const services = (key.Properties.KeyPolicy.Statement as (Statement & { Principal: Record<string, unknown> })[])
      .filter((s) => s.Principal.Service)
      .map((s) => ({ Action: s.Action, Principal: s.Principal, Resource: s.Resource, Effect: s.Effect }));
    assert.deepEqual(services, [
      {
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Principal: { Service: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] },
        Resource: '*',
      },
    ]);
  });

  test('only this stack’s alarms may publish to the topic, since its policy replaces SNS’s default', () => {
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [topic],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: Match.anyValue(),
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Resource: topic,
            Condition: {
              StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
              ArnLike: {
                'aws:SourceArn': {
                  'Fn::Join': [
                    '',
                    [
                      'arn:',
                      { Ref: 'AWS::Partition' },
                      ':cloudwatch:',
                      { Ref: 'AWS::Region' },
                      ':',
                      { Ref: 'AWS::AccountId' },
                      ':alarm:digitnet-dev-*',
                    ],
                  ],
                },
              },
            },
          },
        ]),
      },
    });
  });

  test('no e-mail subscription unless alarmEmail is set', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const subscribed = synth({ alarmEmail: 'ops@example.com' });
    subscribed.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalId(subscribed.stack.monitoring.topic) },
    });
  });

  test('every alarm notifies the topic, and treats missing data as fine', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    assert.equal(alarms.length, 11);
    for (const { Properties } of alarms) {
      assert.deepEqual(Properties.AlarmActions, [topic], Properties.AlarmName);
      assert.equal(Properties.TreatMissingData, 'notBreaching', Properties.AlarmName);
      assert.equal(Properties.ComparisonOperator, 'GreaterThanOrEqualToThreshold', Properties.AlarmName);
    }
  });

  test('API 5xx: 5% or more of at least 10 requests in 5 minutes', () => {
    const props = alarmProps('Api5xxRate');
    assert.deepEqual([props.Threshold, props.EvaluationPeriods, props.DatapointsToAlarm], [5, 1, 1]);
    const [expression, ...inputs] = props.Metrics;
    assert.equal(expression.Expression, 'IF(whole >= 10, 100 * part / whole, 0)');
    assert.deepEqual(
      inputs.map((m: { Id: string; MetricStat: { Metric: { MetricName: string }; Period: number; Stat: string } }) => [
        m.Id,
        m.MetricStat.Metric.MetricName,
        m.MetricStat.Period,
        m.MetricStat.Stat,
      ]),
      [
        ['part', '5xx', 300, 'Sum'],
        ['whole', 'Count', 300, 'Sum'],
      ],
    );
    assert.deepEqual(inputs[0].MetricStat.Metric.Dimensions, [{ Name: 'ApiId', Value: { Ref: logicalId(stack.api) } }]);
  });

  test('POST /predict p99 latency: 1000 ms or more for three 5-minute periods in a row', () => {
    const props = alarmProps('PredictLatencyP99');
    assert.deepEqual(
      {
        Namespace: props.Namespace,
        MetricName: props.MetricName,
        Dimensions: props.Dimensions,
        ExtendedStatistic: props.ExtendedStatistic,
        Period: props.Period,
      },
      {
        Namespace: 'digitnet',
        MetricName: 'Latency',
        Dimensions: [
          { Name: 'component', Value: 'predict' },
          { Name: 'stage', Value: 'dev' },
        ],
        ExtendedStatistic: 'p99',
        Period: 300,
      },
    );
    assert.deepEqual([props.Threshold, props.EvaluationPeriods, props.DatapointsToAlarm], [1000, 3, 3]);
  });

  test('API throttling: 20 or more 429s in 5 minutes, counted from the access log', () => {
    const props = alarmProps('ApiThrottled');
    assert.deepEqual(
      [props.Namespace, props.MetricName, props.Dimensions, props.Statistic, props.Period, props.Threshold],
      ['digitnet', 'ApiThrottled', [{ Name: 'stage', Value: 'dev' }], 'Sum', 300, 20],
    );
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: Match.stringLikeRegexp('^ApiAccessLogs') },
      FilterPattern: '{ $.status = "429" }',
      MetricTransformations: [
        {
          MetricNamespace: 'digitnet',
          MetricName: 'ApiThrottled',
          MetricValue: '1',
          Dimensions: [{ Key: 'stage', Value: '$.stage' }],
        },
      ],
    });
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('"stage":"dev"') },
    });
  });

  test('function throttles: any throttle of any of the five functions in 5 minutes', () => {
    const props = alarmProps('FunctionThrottles');
    const [expression, ...inputs] = props.Metrics;
    assert.equal(expression.Expression, 'predict + feedback + retrain + live + rollout');
    assert.deepEqual(
      inputs.map((m: { Id: string; MetricStat: { Metric: { MetricName: string; Dimensions: unknown } } }) => [
        m.Id,
        m.MetricStat.Metric.MetricName,
        m.MetricStat.Metric.Dimensions,
      ]),
      [
        stack.predictFunction,
        stack.feedbackFunction,
        stack.retrainFunction,
        stack.liveFunction,
        stack.rolloutFunction,
      ].map((fn, i) => [
        ['predict', 'feedback', 'retrain', 'live', 'rollout'][i],
        'Throttles',
        [{ Name: 'FunctionName', Value: { Ref: logicalId(fn) } }],
      ]),
    );
    assert.equal(props.Threshold, 1);
  });

  test('function errors: one alarm per function on any failed invocation in 5 minutes', () => {
    const fns = {
      PredictFunctionErrors: stack.predictFunction,
      FeedbackFunctionErrors: stack.feedbackFunction,
      RetrainFunctionErrors: stack.retrainFunction,
      LiveFunctionErrors: stack.liveFunction,
      RolloutFunctionErrors: stack.rolloutFunction,
    };
    for (const [name, fn] of Object.entries(fns)) {
      const props = alarmProps(name);
      assert.deepEqual(
        [props.Namespace, props.MetricName, props.Dimensions, props.Statistic, props.Period, props.Threshold],
        ['AWS/Lambda', 'Errors', [{ Name: 'FunctionName', Value: { Ref: logicalId(fn) } }], 'Sum', 300, 1],
      );
    }
  });

  test('low-confidence rate: 30% or more of at least 10 predictions, for three 5-minute periods in a row', () => {
    const props = alarmProps('LowConfidenceRate');
    assert.deepEqual([props.Threshold, props.EvaluationPeriods, props.DatapointsToAlarm], [30, 3, 3]);
    assert.deepEqual(props.Metrics, [
      {
        Id: 'expr_1',
        Expression: 'IF(whole >= 10, 100 * part / whole, 0)',
        Label: 'low-confidence answers, % of predictions',
        ReturnData: true,
      },
      { Id: 'part', ...ours('LowConfidence', 'predict', 'Sum'), ReturnData: false },
      { Id: 'whole', ...ours('Predictions', 'predict', 'Sum'), ReturnData: false },
    ]);
  });

  test("drift: the hourly DriftScore at 0.25 or more, the drift module's own threshold", () => {
    const props = alarmProps('Drift');
    const { MetricStat } = ours('DriftScore', 'drift', 'Maximum', 3600);
    assert.deepEqual(
      [props.Namespace, props.MetricName, props.Dimensions, props.Statistic, props.Period, props.Threshold],
      [
        MetricStat.Metric.Namespace,
        MetricStat.Metric.MetricName,
        MetricStat.Metric.Dimensions,
        MetricStat.Stat,
        MetricStat.Period,
        0.25,
      ],
    );
  });

  test('a training job that fails on this queue, after its retries, is sent to the topic with its reason', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.batch'],
        'detail-type': ['Batch Job State Change'],
        detail: { status: ['FAILED'], jobQueue: [{ 'Fn::GetAtt': [logicalId(stack.training.queue), 'JobQueueArn'] }] },
      },
      Targets: [
        Match.objectLike({
          Arn: topic,
          InputTransformer: {
            InputPathsMap: {
              'detail-jobName': '$.detail.jobName',
              'detail-jobId': '$.detail.jobId',
              'detail-statusReason': '$.detail.statusReason',
            },
            InputTemplate:
              '"digitnet (dev): training job <detail-jobName> (<detail-jobId>) failed: <detail-statusReason>"',
          },
        }),
      ],
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [topic],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'events.amazonaws.com' },
            Resource: topic,
          }),
        ]),
      },
    });
  });

  test('the dashboard digitnet-dev graphs every metric the service publishes, the drift score and the alarms', () => {
    const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
    assert.equal(dashboards.length, 1);
    assert.equal(dashboards[0]!.Properties.DashboardName, 'digitnet-dev');
    // The body is JSON joined around the region's token; with the token replaced it parses.
    const parts = dashboards[0]!.Properties.DashboardBody['Fn::Join'][1] as unknown[];
    const body = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'REGION')).join('')) as {
      widgets: { type: string; properties: { title: string; metrics?: unknown[] } }[];
    };
    const strings = (value: unknown): string[] =>
      typeof value === 'string'
        ? [value]
        : typeof value === 'object' && value !== null
          ? Object.values(value).flatMap(strings)
          : [];
    const shown = (name: string) =>
      body.widgets.some((w) =>
        strings(w.properties.metrics ?? []).some((s) => s === name || s.includes(`MetricName="${name}"`)),
      );
    for (const name of [
      'Predictions',
      'Latency',
      'Confidence',
      'LowConfidence',
      'ColdStart',
      'Errors',
      'LiveAccuracy',
      'LiveFeedback',
      'TestAccuracy',
      'LiveHoldoutAccuracy',
      'EpochSeconds',
      'GatePassed',
      'Promoted',
      'DriftScore',
      'ApiThrottled',
      'Count',
      '5xx',
      '4xx',
      'Throttles',
      'NotDigit',
      'NotDigitNoInk',
      'NotDigitSeveralMarks',
      'NotDigitNotHandwriting',
      'NotDigitUndecided',
      'Numbers',
    ]) {
      assert.ok(shown(name), `the dashboard graphs ${name}`);
    }
    const alarmsWidget = body.widgets.find((w) => w.properties.title === 'Alarms');
    assert.equal(alarmsWidget?.type, 'alarm');
  });
});

describe('outputs', () => {
  for (const name of ['ApiUrl', 'BucketName', 'JobQueueArn', 'JobDefinitionArn', 'DashboardName', 'AlarmTopicArn']) {
    test(`exports ${name}`, () => {
      template.hasOutput(name, { Value: Match.anyValue() });
    });
  }

  test('exports the dashboard’s console address in the stack’s region', () => {
    template.hasOutput('DashboardUrl', {
      Value: {
        'Fn::Join': [
          '',
          [
            'https://',
            { Ref: 'AWS::Region' },
            '.console.aws.amazon.com/cloudwatch/home?region=',
            { Ref: 'AWS::Region' },
            '#dashboards:name=',
            { Ref: logicalId(stack.monitoring.dashboard) },
          ],
        ],
      },
    });
  });
});

describe('cdk-nag', () => {
  test('AwsSolutions reports no unacknowledged finding, error or warning', () => {
    const report = new AwsSolutionsChecks().validateScope(stack);
    assert.deepEqual(
      report.violations.map(
        (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
      [],
    );
  });

  test('every acknowledgement gives a reason', () => {
    const acknowledged = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    assert.ok(acknowledged.length > 0);
    for (const [id, reason] of acknowledged) assert.ok(reason.length > 40, `${id} needs a real reason`);
  });
});

describe('synthesized assets', () => {
  const assembly = main.app.synth();
  const manifest = JSON.parse(
    readFileSync(path.join(assembly.directory, `${stack.artifactId}.assets.json`), 'utf8'),
  ) as {
    files: Record<string, { source: { path: string } }>;
    dockerImages: Record<string, { source: { directory: string; dockerFile: string; platform?: string } }>;
  };
  const predictKey = template.findResources('AWS::Lambda::Function')[logicalId(stack.predictFunction)]!.Properties.Code
    .S3Key as string;
  const predictDir = path.join(assembly.directory, manifest.files[predictKey.replace(/\.zip$/, '')]!.source.path);

  test('the predict asset holds the bundle, its three .wasm files and the page, and no source map', () => {
    for (const file of ['index.mjs', ...WASM_FILES, 'web/index.html']) {
      assert.ok(existsSync(path.join(predictDir, file)), `${file} missing from the predict asset`);
    }
    assert.ok(!existsSync(path.join(predictDir, 'index.mjs.map')), 'a source map would be loaded for nothing');
  });

  test('the predict asset is what `npm run build` makes, byte for byte, file for file', async () => {
    const { outDir } = await buildPredict(path.join(await tempDir('digitnet-build-'), 'predict'));
    const files = (dir: string) =>
      readdirSync(dir, { recursive: true, encoding: 'utf8' })
        .filter((f) => statSync(path.join(dir, f)).isFile())
        .sort();
    assert.deepEqual(files(predictDir), files(outDir));
    for (const file of files(outDir)) {
      assert.ok(
        readFileSync(path.join(predictDir, file)).equals(readFileSync(path.join(outDir, file))),
        `${file} differs between the CDK asset and npm run build`,
      );
    }
  });

  test('the predict asset answers from its own folder against the embedded S3', async () => {
    const bucket = await testBucket();
    const script = `
      const { handler } = await import('./index.mjs');
      const request = (path) => ({ rawPath: path, headers: {}, requestContext: { http: { method: 'GET', path }, requestId: 'asset-test' } });
      const page = await handler(request('/'));
      const health = await handler(request('/health'));
      console.log(JSON.stringify({ page: [page.statusCode, page.body.slice(0, 15)], health: [health.statusCode, JSON.parse(health.body)] }));`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: predictDir,
      env: { PATH: process.env.PATH, ...bucket.env, AWS_REGION: 'eu-west-1' },
    });
    const answer = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.deepEqual(answer.page, [200, '<!doctype html>']);
    assert.equal(answer.health[0], 503);
    assert.equal(answer.health[1].error.code, 'no_model');
    assert.match(stderr, /"backend":"wasm"/, 'the wasm backend should load from the asset folder');
  });

  const image = Object.values(manifest.dockerImages)[0]!.source;
  const context = path.join(assembly.directory, image.directory);

  test('the training image is staged, not built: its context holds only what the Dockerfile copies', () => {
    const entries = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) =>
        statSync(path.join(dir, name)).isDirectory()
          ? entries(path.join(dir, name)).map((e) => `${name}/${e}`)
          : [name],
      );
    const files = entries(context);
    assert.equal(image.dockerFile, TRAIN_DOCKERFILE);
    assert.equal(image.platform, 'linux/amd64');
    for (const needed of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      TRAIN_DOCKERFILE,
      'functions/train/main.ts',
    ]) {
      assert.ok(files.includes(needed), `${needed} missing from the build context`);
    }
    assert.deepEqual(
      files.filter(
        (f) => /^(node_modules|\.data|cdk\.out|dist|\.git|test|scripts|web)\//.test(f) || f.includes('/node_modules/'),
      ),
      [],
    );
  });

  /** The esbuild arguments of the Dockerfile's bundle step. */
  const trainBundleCommand = () =>
    /RUN npx esbuild (.*?) &&/.exec(
      readFileSync(path.join(repoRoot, TRAIN_DOCKERFILE), 'utf8').replace(/\\\n\s*/g, ' '),
    )?.[1];

  test('the Dockerfile bundles for the same Node, platform and module format as the Lambda', () => {
    const command = trainBundleCommand() ?? '';
    for (const setting of ['target', 'platform', 'format'] as const) {
      assert.match(
        command,
        new RegExp(`--${setting}=${LAMBDA_ESBUILD[setting]}\\b`),
        `the training bundle's --${setting}`,
      );
    }
  });

  test('the Dockerfile’s bundle step produces a training entry that runs, and trains on two worker threads', async () => {
    const command = trainBundleCommand();
    assert.ok(command, 'the Dockerfile should bundle with esbuild');
    const out = await tempDir('digitnet-train-bundle-');
    const args = command
      .trim()
      .split(/\s+/)
      .map((a) => (a.startsWith('--outdir=') ? `--outdir=${path.join(out, 'dist')}` : a));
    await run(path.join(repoRoot, 'node_modules', '.bin', 'esbuild'), args, { cwd: repoRoot });
    // The image installs the dependencies beside the bundle; here they are the repository's.
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(out, 'node_modules'));
    const train = path.join(out, 'dist', 'train.mjs');
    const { stdout } = await run(process.execPath, [train, '--help'], { cwd: out });
    assert.match(stdout, /^Usage: npm run train/);
    const bucket = await testBucket();
    const trained = await run(
      process.execPath,
      [train, '--arch', 'mlp', '--epochs', '1', '--train-limit', '512', '--threads', '2'],
      {
        cwd: out,
        env: {
          PATH: process.env.PATH,
          ...bucket.env,
          MNIST_DIR: mnistDir,
          TFJS_BACKEND: 'wasm',
          DATA_DIR: path.join(out, '.data'),
        },
      },
    );
    const outcome = JSON.parse(trained.stdout.trim().split('\n').at(-1)!);
    assert.equal(outcome.threads, 2);
    assert.equal(outcome.epochs, 1);
  });
});

describe('stages and context', () => {
  const prod = synth({ stage: 'prod' });

  test('prod retains the bucket when the stack is deleted', () => {
    prod.template.hasResource('AWS::S3::Bucket', {
      Properties: Match.objectLike({ VersioningConfiguration: Match.anyValue() }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  test('prod never empties a bucket automatically', () => {
    prod.template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });

  test('prod retains its log groups', () => {
    for (const logGroup of Object.values(prod.template.findResources('AWS::Logs::LogGroup')))
      assert.equal(logGroup.DeletionPolicy, 'Retain');
  });

  test('an unknown stage fails synthesis with the allowed list', () => {
    assert.throws(
      () => buildApp({ context: { stage: 'qa' } }),
      /context "stage" must be one of local, dev, prod; got "qa"/,
    );
  });

  test('the CDK entry reports a bad context value in one line, without a stack trace', async () => {
    // The CDK CLI hands `-c` values to the app in CDK_CONTEXT_JSON.
    const env = {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify({ stage: 'staging' }),
      CDK_OUTDIR: await tempDir('digitnet-cdk-out-'),
    };
    const failed = await run(process.execPath, ['--import', 'tsx', 'infra/bin/app.ts'], { cwd: repoRoot, env }).then(
      () => assert.fail('synthesis succeeded with stage=staging'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(failed.code, 1);
    assert.equal(failed.stderr, 'digitnet: context "stage" must be one of local, dev, prod; got "staging"\n');
  });

  test('trainWithFeedback is true or false, nothing else', () => {
    const context = (value: unknown) => ({
      tryGetContext: (key: string) => (key === 'trainWithFeedback' ? value : undefined),
    });
    assert.equal(readStackConfig(context(undefined)).trainWithFeedback, false);
    assert.equal(readStackConfig(context('true')).trainWithFeedback, true);
    assert.throws(
      () => readStackConfig(context('yes')),
      /context "trainWithFeedback" must be true or false; got "yes"/,
    );
  });

  test('memory a Fargate task cannot have fails synthesis', () => {
    assert.throws(() => buildApp({ context: { trainVcpu: '4', trainMemoryGiB: '64' } }), /trainMemoryGiB/);
  });

  test('reserved concurrency "off" reserves none for any function (accounts with a limit under 100)', () => {
    const off = synth({
      predictReservedConcurrency: 'off',
      retrainReservedConcurrency: 'off',
      feedbackReservedConcurrency: 'off',
    });
    for (const fn of [off.stack.predictFunction, off.stack.retrainFunction, off.stack.feedbackFunction]) {
      off.template.hasResourceProperties('AWS::Lambda::Function', {
        Role: arn(roleOf(fn)),
        ReservedConcurrentExecutions: Match.absent(),
      });
    }
  });

  test('a reserved concurrency of 0, which would throttle every call, fails synthesis', () => {
    assert.throws(
      () => buildApp({ context: { predictReservedConcurrency: '0' } }),
      /context "predictReservedConcurrency" must be a whole number from 1 to 10000; got "0"/,
    );
  });

  // Values arrive as strings from `cdk deploy -c key=value`.
  const tuned = synth({
    predictMemoryMiB: '2048',
    predictTimeoutSeconds: '20',
    predictReservedConcurrency: '20',
    retrainReservedConcurrency: '3',
    throttleRateLimit: '5',
    throttleBurstLimit: '10',
    trainVcpu: '8',
    trainMemoryGiB: '16',
    trainTimeoutMinutes: '90',
    noncurrentVersionExpiryDays: '7',
    weeklyRetrain: 'true',
    feedbackReservedConcurrency: '4',
    feedbackThrottleRateLimit: '2',
    feedbackThrottleBurstLimit: '4',
    captureSampleRate: '0.25',
    captureBufferMiB: '64',
    captureBufferSeconds: '60',
    liveRetentionDays: '30',
    liveSummaryIntervalMinutes: '15',
    trainWithFeedback: 'true',
    lowConfidenceThreshold: '0.5',
    alarmApi5xxPercent: '2.5',
    alarmPredictP99Ms: '500',
    alarmApiThrottles: '5',
    alarmLowConfidencePercent: '40',
    alarmDriftScore: '0.1',
  });

  test('context sets the predict function’s memory and timeout', () => {
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.predictFunction)),
      MemorySize: 2048,
      Timeout: 20,
    });
  });

  test('context sets each function’s reserved concurrency', () => {
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.predictFunction)),
      ReservedConcurrentExecutions: 20,
    });
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.retrainFunction)),
      ReservedConcurrentExecutions: 3,
    });
  });

  test('context sets the stage throttling', () => {
    tuned.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
    });
  });

  test('context sets the feedback function’s reserved concurrency and its route’s throttling', () => {
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.feedbackFunction)),
      ReservedConcurrentExecutions: 4,
    });
    tuned.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      RouteSettings: { 'POST /feedback': { ThrottlingRateLimit: 2, ThrottlingBurstLimit: 4 } },
    });
  });

  test('the /feedback throttle defaults to no more than a lowered stage throttle', () => {
    const lowered = synth({ throttleRateLimit: '5', throttleBurstLimit: '8' });
    lowered.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      RouteSettings: { 'POST /feedback': { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 8 } },
    });
  });

  test('a /feedback throttle above the stage’s, which would loosen it, fails synthesis', () => {
    assert.throws(
      () => buildApp({ context: { feedbackThrottleRateLimit: '80' } }),
      /context "feedbackThrottleRateLimit" must be a whole number from 1 to 50; got "80"/,
    );
  });

  test('context sets the capture sample rate and the stream’s buffering', () => {
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.predictFunction)),
      Environment: { Variables: Match.objectLike({ CAPTURE_SAMPLE_RATE: '0.25' }) },
    });
    tuned.template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', {
      ExtendedS3DestinationConfiguration: Match.objectLike({
        BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 60 },
      }),
    });
  });

  test('context sets how long captures and feedback are kept', () => {
    const rules = tuned.template.findResources('AWS::S3::Bucket')[logicalId(tuned.stack.bucket)]!.Properties
      .LifecycleConfiguration.Rules as { Prefix?: string; ExpirationInDays?: number }[];
    assert.deepEqual(
      rules.filter((r) => r.Prefix).map((r) => [r.Prefix, r.ExpirationInDays]),
      [
        ['captures/', 30],
        ['captures-errors/', 30],
        ['feedback/', 30],
      ],
    );
  });

  test('context sets how often the live summary runs', () => {
    tuned.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: [Match.objectLike({ Arn: arn(tuned.stack.liveFunction) })],
    });
  });

  test('context sets the training vCPU, memory and timeout', () => {
    tuned.template.hasResourceProperties('AWS::Batch::JobDefinition', {
      Timeout: { AttemptDurationSeconds: 5400 },
      ContainerProperties: Match.objectLike({
        ResourceRequirements: [
          { Type: 'MEMORY', Value: '16384' },
          { Type: 'VCPU', Value: '8' },
        ],
      }),
    });
  });

  test('context sets how long noncurrent versions are kept', () => {
    tuned.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ NoncurrentVersionExpiration: { NoncurrentDays: 7 } })]),
      },
    });
  });

  test("trainWithFeedback makes jobs submitted without overrides, as the schedule's are, train on feedback", () => {
    tuned.template.hasResourceProperties('AWS::Batch::JobDefinition', {
      ContainerProperties: Match.objectLike({
        Environment: Match.arrayWith([{ Name: 'WITH_FEEDBACK', Value: 'true' }]),
      }),
    });
    tuned.template.hasResourceProperties('AWS::Events::Rule', {
      Description: Match.stringLikeRegexp('with feedback'),
    });
  });

  test('context sets the low-confidence threshold and every alarm threshold', () => {
    tuned.template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(roleOf(tuned.stack.predictFunction)),
      Environment: { Variables: Match.objectLike({ LOW_CONFIDENCE_THRESHOLD: '0.5' }) },
    });
    const thresholds = Object.fromEntries(
      Object.values(tuned.template.findResources('AWS::CloudWatch::Alarm')).map((a) => [
        a.Properties.AlarmName,
        a.Properties.Threshold,
      ]),
    );
    assert.deepEqual(
      [
        thresholds['digitnet-dev-Api5xxRate'],
        thresholds['digitnet-dev-PredictLatencyP99'],
        thresholds['digitnet-dev-ApiThrottled'],
        thresholds['digitnet-dev-LowConfidenceRate'],
        thresholds['digitnet-dev-Drift'],
      ],
      [2.5, 500, 5, 40, 0.1],
    );
  });

  for (const [key, value, message] of [
    ['alarmEmail', 'ops', 'must be one e-mail address; got "ops"'],
    ['alarmEmail', 'a@example.com,b@example.com', 'must be one e-mail address; got "a@example.com,b@example.com"'],
    ['lowConfidenceThreshold', '60', 'must be a number from 0 to 1; got "60"'],
    ['alarmApi5xxPercent', '0', 'must be a number from 0.1 to 100; got "0"'],
    ['alarmPredictP99Ms', '1.5', 'must be a whole number from 10 to 60000; got "1.5"'],
    ['alarmApiThrottles', 'many', 'must be a whole number from 1 to 1000000; got "many"'],
    ['alarmLowConfidencePercent', '101', 'must be a number from 1 to 100; got "101"'],
    ['alarmDriftScore', '-1', 'must be a number from 0.001 to 100; got "-1"'],
  ]) {
    test(`${key}=${value} fails synthesis`, () => {
      const context = { tryGetContext: (k: string) => (k === key ? value : undefined) };
      assert.throws(() => readStackConfig(context), { message: `context "${key}" ${message}` });
    });
  }

  test('weeklyRetrain submits the training job every Sunday', () => {
    tuned.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 3 ? * SUN *)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(tuned.stack.training.queue), 'JobQueueArn'] },
          BatchParameters: Match.objectLike({ JobDefinition: { Ref: logicalId(tuned.stack.training.jobDefinition) } }),
        }),
      ],
    });
  });
});
