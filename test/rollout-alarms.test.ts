import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { cloudWatchAlarms, parseDescribeAlarms, signQuery } from '#lib/rollout/cloudwatch-alarms';

const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'token',
};
const AT = new Date('2026-12-03T09:30:00.000Z');
const HOST = 'monitoring.eu-west-1.amazonaws.com';

const answer = (alarms: [string, string][]) =>
  `<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><DescribeAlarmsResult><MetricAlarms>${alarms
    .map(
      ([name, state]) =>
        `<member><AlarmName>${name}</AlarmName><Dimensions><member><Name>FunctionName</Name><Value>f</Value></member></Dimensions><StateValue>${state}</StateValue></member>`,
    )
    .join('')}</MetricAlarms><CompositeAlarms/></DescribeAlarmsResult></DescribeAlarmsResponse>`;

describe('the CloudWatch alarms adapter', () => {
  test('signs exactly as the AWS SDK signer does', async () => {
    const body = 'Action=DescribeAlarms&Version=2010-08-01&AlarmNames.member.1=digitnet-dev-Api5xxRate';
    const ours = signQuery(HOST, body, { region: 'eu-west-1', service: 'monitoring' }, CREDENTIALS, AT);
    const sdk = await new SignatureV4({
      service: 'monitoring',
      region: 'eu-west-1',
      credentials: CREDENTIALS,
      sha256: Hash.bind(null, 'sha256'),
    }).sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname: HOST,
        path: '/',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', host: HOST },
        body,
      },
      { signingDate: AT },
    );
    assert.equal(ours.authorization, sdk.headers.authorization);
    assert.equal(ours['x-amz-security-token'], 'token');
  });

  test("asks for this stage's model alarms by name and reads their states", async () => {
    const sent: { url: string; body: string }[] = [];
    const alarms = cloudWatchAlarms({
      region: 'eu-west-1',
      stage: 'dev',
      credentials: () => CREDENTIALS,
      now: () => AT,
      fetch: async (url, init) => {
        sent.push({ url: String(url), body: String(init?.body) });
        return new Response(
          answer([
            ['digitnet-dev-Api5xxRate', 'ALARM'],
            ['digitnet-dev-LowConfidenceRate', 'OK'],
          ]),
        );
      },
    });
    assert.deepEqual(await alarms(), [
      { name: 'digitnet-dev-Api5xxRate', state: 'ALARM' },
      { name: 'digitnet-dev-LowConfidenceRate', state: 'OK' },
    ]);
    assert.equal(sent[0]?.url, `https://${HOST}/`);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(sent[0]?.body)), {
      Action: 'DescribeAlarms',
      Version: '2010-08-01',
      'AlarmNames.member.1': 'digitnet-dev-Api5xxRate',
      'AlarmNames.member.2': 'digitnet-dev-PredictLatencyP99',
      'AlarmNames.member.3': 'digitnet-dev-PredictFunctionErrors',
      'AlarmNames.member.4': 'digitnet-dev-LowConfidenceRate',
    });
  });

  test('an error answer is an error naming its code', async () => {
    const alarms = cloudWatchAlarms({
      region: 'eu-west-1',
      stage: 'dev',
      credentials: () => CREDENTIALS,
      fetch: async () =>
        new Response('<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>', { status: 403 }),
    });
    await assert.rejects(alarms(), /DescribeAlarms answered 403 \(AccessDenied\)/);
  });

  for (const [what, xml] of [
    ['an unknown state', answer([['digitnet-dev-Api5xxRate', 'BROKEN']])],
    ['a name without a state', '<AlarmName>digitnet-dev-Api5xxRate</AlarmName>'],
  ] as const) {
    test(`an answer with ${what} is refused, not guessed at`, () => {
      assert.throws(() => parseDescribeAlarms(xml), /does not understand/);
    });
  }
});
