/**
 * The alarms port's cloud adapter: CloudWatch DescribeAlarms for the alarms a
 * model version can cause. The call is one signed HTTPS request (the query
 * protocol, SigV4 with node:crypto): the CloudWatch SDK client would be a new
 * runtime dependency and a larger bundle for a single read.
 *
 * Only the alarms that a serving version or a canary can set off count: 5xx
 * rate, predict p99 latency, predict function errors, low-confidence rate.
 * Throttling is about traffic, drift about what people draw, and the other
 * functions' errors are not the model's; none of them is a reason to roll back.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Alarm, AlarmState } from './decide.ts';

/** Ids in infra/monitoring.ts; the alarm's name is `digitnet-<stage>-<id>`. */
export const MODEL_ALARM_IDS = [
  'Api5xxRate',
  'PredictLatencyP99',
  'PredictFunctionErrors',
  'LowConfidenceRate',
] as const;

export const alarmName = (stage: string, id: string) => `digitnet-${stage}-${id}`;

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface CloudWatchAlarmsOptions {
  region: string;
  stage: string;
  credentials: () => AwsCredentials;
  fetch?: typeof fetch;
  now?: () => Date;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hmac = (key: Buffer | string, text: string) => createHmac('sha256', key).update(text).digest();

/** SigV4 headers for a POST of `body` to `host`'s root (the query protocol's one path). */
export function signQuery(
  host: string,
  body: string,
  scope: { region: string; service: string },
  credentials: AwsCredentials,
  at: Date,
): Record<string, string> {
  const amzDate = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
    host,
    // Optional outside S3, but the SDK's signer sends it: the same headers make the two comparable (its test).
    'x-amz-content-sha256': sha256(body),
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = ['POST', '/', '', ...names.map((n) => `${n}:${headers[n]}`), '', signedHeaders, sha256(body)].join(
    '\n',
  );
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, credentialScope, sha256(canonical)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), scope.region), scope.service),
    'aws4_request',
  );
  const signature = createHmac('sha256', key).update(toSign).digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}

const STATES: readonly string[] = ['OK', 'ALARM', 'INSUFFICIENT_DATA'];

/** The alarms in a DescribeAlarms XML answer: each alarm has exactly one AlarmName and one StateValue, in that order. */
export function parseDescribeAlarms(xml: string): Alarm[] {
  const names = [...xml.matchAll(/<AlarmName>([^<]*)<\/AlarmName>/g)].map((m) => m[1]!);
  const states = [...xml.matchAll(/<StateValue>([^<]*)<\/StateValue>/g)].map((m) => m[1]!);
  if (names.length !== states.length || states.some((s) => !STATES.includes(s)))
    throw new Error('CloudWatch answered DescribeAlarms with alarms this reader does not understand');
  return names.map((name, i) => ({ name, state: states[i] as AlarmState }));
}

export function cloudWatchAlarms(options: CloudWatchAlarmsOptions): () => Promise<Alarm[]> {
  const host = `monitoring.${options.region}.amazonaws.com`;
  const params = new URLSearchParams({ Action: 'DescribeAlarms', Version: '2010-08-01' });
  MODEL_ALARM_IDS.forEach((id, i) => params.append(`AlarmNames.member.${i + 1}`, alarmName(options.stage, id)));
  const body = params.toString();
  const send = options.fetch ?? fetch;
  return async () => {
    const headers = signQuery(
      host,
      body,
      { region: options.region, service: 'monitoring' },
      options.credentials(),
      options.now?.() ?? new Date(),
    );
    const response = await send(`https://${host}/`, { method: 'POST', headers, body });
    const text = await response.text();
    if (!response.ok) {
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1] ?? 'no error code';
      throw new Error(`CloudWatch DescribeAlarms answered ${response.status} (${code})`);
    }
    return parseDescribeAlarms(text);
  };
}
