/**
 * The operator CLIs against a deployed stack: `npm run retrain/promote --
 * --deployed` read the API URL from cdk.outputs.json and sign each request
 * with the caller's AWS credentials (SigV4), as API Gateway's IAM authoriser
 * demands. AWS cannot be reached here, so a server on 127.0.0.1 plays the API
 * and checks each signature from the bytes it received, computed by hand from
 * the AWS Signature Version 4 specification rather than by the signing library.
 * Locally they send the token `npm start` wrote instead; the last tests cover
 * what they say when that stack is not there.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { runScript, type ScriptResult } from './support/cli.ts';
import { tempDir } from './support/env.ts';

const ACCESS_KEY = 'AKIDEXAMPLEOPERATOR';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const REGION = 'eu-west-3';
const JOB_ID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
/** The job this API starts for a one-epoch request: it fails, as Batch reports a container that exited non-zero. */
const FAILING_JOB_ID = '9e8d7c6b-5a49-4837-a261-5f4e3d2c1b0a';
const FAILED_JOB = {
  jobId: FAILING_JOB_ID,
  status: 'FAILED',
  done: true,
  statusReason: 'Essential container in task exited',
  exitCode: 1,
  logStreamName: 'train/default/5f4e3d2c1b0a',
  logGroupName: 'Digitnet-dev-TrainingLogs-xyz',
};
const VERSION = '20261126T040000Z-cnn';
/** A job submitted with withFeedback, whose version the live-holdout rule refused. */
const FEEDBACK_JOB_ID = '1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d';
const LIVE_REFUSAL =
  'live-holdout accuracy 88.50% is more than 1 point below the serving model 20261119T030000Z-cnn (90.00%) on the same 200 images';

interface Received {
  method: string;
  path: string;
  body: string;
  signature: 'valid' | string;
}

const hmac = (key: string | Buffer, text: string): Buffer => createHmac('sha256', key).update(text).digest();
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Why a request's SigV4 signature is wrong, or 'valid'. */
function checkSignature(request: IncomingMessage, body: string): 'valid' | string {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      request.headers.authorization ?? '',
    );
  if (!match) return `no SigV4 authorization header: ${request.headers.authorization}`;
  const [, accessKey, date, region, service, signedHeaders, signature] = match as unknown as string[];
  if (accessKey !== ACCESS_KEY) return `signed with access key ${accessKey}`;
  if (region !== REGION || service !== 'execute-api') return `scoped to ${region}/${service}`;
  const amzDate = String(request.headers['x-amz-date']);
  if (!amzDate.startsWith(date!)) return `x-amz-date ${amzDate} is not of ${date}`;
  const names = signedHeaders!.split(';');
  if (!names.includes('host')) return 'host is not signed';
  const canonicalHeaders = names.map((name) => `${name}:${String(request.headers[name] ?? '').trim()}\n`).join('');
  const canonicalRequest = [request.method, request.url, '', canonicalHeaders, signedHeaders, sha256(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = ['aws4_request'].reduce(hmac, hmac(hmac(hmac(`AWS4${SECRET_KEY}`, date!), region!), service!));
  const expected = hmac(key, stringToSign).toString('hex');
  return expected === signature ? 'valid' : 'the signature does not match the request received';
}

/** Answers like the deployed API: 403 with API Gateway's body for a bad signature, else the retrain routes. */
function respond(request: IncomingMessage, body: string, signature: string): { status: number; body: unknown } {
  if (signature !== 'valid')
    return {
      status: 403,
      body: { message: 'The request signature we calculated does not match the signature you provided.' },
    };
  const route = `${request.method} ${request.url}`;
  if (route === 'POST /train')
    return {
      status: 202,
      body: {
        jobId: JSON.parse(body).withFeedback
          ? FEEDBACK_JOB_ID
          : JSON.parse(body).epochs === 1
            ? FAILING_JOB_ID
            : JOB_ID,
        status: 'SUBMITTED',
      },
    };
  if (route === `GET /train/${FEEDBACK_JOB_ID}`) {
    const gate = { passed: false, reasons: [LIVE_REFUSAL] };
    const model = { version: VERSION, accuracy: 0.9931, liveAccuracy: 0.885, serving: false, gate };
    return {
      status: 200,
      body: { jobId: FEEDBACK_JOB_ID, status: 'SUCCEEDED', done: true, withFeedback: true, model },
    };
  }
  if (route === `GET /train/${FAILING_JOB_ID}`) return { status: 200, body: FAILED_JOB };
  if (route === `GET /train/${JOB_ID}`) {
    return {
      status: 200,
      body: {
        jobId: JOB_ID,
        status: 'SUCCEEDED',
        done: true,
        model: { version: VERSION, accuracy: 0.9931, serving: true },
      },
    };
  }
  if (route === 'POST /promote') return { status: 200, body: { version: VERSION, previous: '20261119T030000Z-cnn' } };
  return { status: 404, body: { message: 'Not Found' } };
}

let api: Server;
let apiUrl: string;
let received: Received[] = [];
let cwd: string;

before(async () => {
  api = createServer(async (request, response) => {
    let body = '';
    for await (const chunk of request) body += chunk;
    const signature = checkSignature(request, body);
    received.push({ method: request.method!, path: request.url!, body, signature });
    const answer = respond(request, body, signature);
    response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  api.listen(0, '127.0.0.1');
  await once(api, 'listening');
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}/`;
  cwd = await tempDir('digitnet-deployed-');
  await writeFile(
    path.join(cwd, 'cdk.outputs.json'),
    JSON.stringify({ 'Digitnet-dev': { ApiUrl: apiUrl, BucketName: 'digitnet-dev-bucket' } }),
  );
});
after(() => api.close());
beforeEach(() => {
  received = [];
});

/** Runs a CLI from a folder holding cdk.outputs.json, with credentials only from the environment. */
function cli(
  script: string,
  args: string[],
  secret = SECRET_KEY,
  extraEnv: NodeJS.ProcessEnv = {},
): Promise<ScriptResult> {
  const env = {
    ...extraEnv,
    PATH: process.env.PATH,
    HOME: cwd,
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_REGION: REGION,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  return runScript(`scripts/${script}.ts`, args, { cwd, env });
}

describe('operator CLIs with --deployed', () => {
  test('npm run retrain --wait submits a signed POST /train, follows the job with signed GETs and reports the promoted version', async () => {
    const result = await cli('retrain', ['--deployed', '--arch', 'cnn', '--epochs', '12', '--wait']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      received.map((r) => [r.method, r.path, r.signature]),
      [
        ['POST', '/train', 'valid'],
        ['GET', `/train/${JOB_ID}`, 'valid'],
      ],
    );
    assert.deepEqual(JSON.parse(received[0]!.body), { arch: 'cnn', epochs: 12 });
    assert.match(result.stderr, new RegExp(`${VERSION}: test accuracy 99\\.31% — promoted and serving`));
    assert.equal(JSON.parse(result.stdout).model.version, VERSION);
  });

  test("npm run retrain --with-feedback --wait asks for feedback and prints the live-holdout accuracy and the live rule's refusal", async () => {
    const result = await cli('retrain', ['--deployed', '--with-feedback', '--wait']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(received[0]!.body), { arch: 'mlp', epochs: 10, withFeedback: true });
    assert.match(result.stderr, /started \(mlp, 10 epochs, with feedback\)/);
    assert.ok(
      result.stderr.includes(
        `${VERSION}: test accuracy 99.31%, live-holdout accuracy 88.50% — stored but NOT promoted, because ${LIVE_REFUSAL}; `,
      ),
      result.stderr,
    );
  });

  test('npm run promote sends a signed POST /promote with the version', async () => {
    const result = await cli('promote', [VERSION, '--deployed']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      received.map((r) => [r.method, r.path, r.signature]),
      [['POST', '/promote', 'valid']],
    );
    assert.deepEqual(JSON.parse(received[0]!.body), { version: VERSION });
    assert.match(result.stderr, new RegExp(`${VERSION} is now serving \\(was 20261119T030000Z-cnn\\)`));
  });

  test('npm run retrain --wait on a failed job exits 1 and names the job’s log group and stream', async () => {
    const result = await cli('retrain', ['--deployed', '--epochs', '1', '--wait']);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^FAILED — Essential container in task exited$/m);
    assert.match(
      result.stderr,
      /^the job's log: CloudWatch log group Digitnet-dev-TrainingLogs-xyz, stream train\/default\/5f4e3d2c1b0a \(aws logs tail Digitnet-dev-TrainingLogs-xyz --log-stream-names train\/default\/5f4e3d2c1b0a\)$/m,
    );
    assert.deepEqual(JSON.parse(result.stdout), FAILED_JOB);
  });

  test('credentials the API refuses: the CLI exits 1 with API Gateway’s message', async () => {
    const result = await cli('retrain', ['--deployed'], 'not-the-secret');
    assert.equal(result.code, 1);
    assert.equal(received.length, 1);
    assert.match(result.stderr, /training was not started: 403: The request signature we calculated does not match/);
  });

  test('without cdk.outputs.json, --deployed says to deploy first', async () => {
    const { code, stderr } = await runScript('scripts/promote.ts', [VERSION, '--deployed'], {
      cwd: await tempDir('digitnet-undeployed-'),
    });
    assert.equal(code, 1);
    assert.match(stderr, /^--deployed needs cdk\.outputs\.json: run `npm run deploy` first, or pass --url$/m);
    assert.equal(received.length, 0);
  });
});

describe('operator CLIs with DIGITNET_URL', () => {
  // 0.0.0.0 reaches this machine's 127.0.0.1 listeners, yet is not one of the
  // names that count as local: it stands in for the deployed API's host here.
  const deployedApi = () => apiUrl.replace('127.0.0.1', '0.0.0.0');

  test('npm run retrain signs its request to a DIGITNET_URL that is not this machine, though a local token is at hand', async () => {
    const dataDir = await tempDir('digitnet-token-');
    await writeFile(path.join(dataDir, 'local-token'), 'a-token\n');
    const result = await cli('retrain', ['--arch', 'cnn', '--epochs', '12'], SECRET_KEY, {
      DIGITNET_URL: deployedApi(),
      DATA_DIR: dataDir,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      received.map((r) => [r.method, r.path, r.signature]),
      [['POST', '/train', 'valid']],
    );
    assert.equal(JSON.parse(result.stdout).jobId, JOB_ID);
  });

  test('npm run promote signs its request to it too', async () => {
    const result = await cli('promote', [VERSION], SECRET_KEY, { DIGITNET_URL: deployedApi() });
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      received.map((r) => [r.method, r.path, r.signature]),
      [['POST', '/promote', 'valid']],
    );
  });
});

describe('operator CLIs against the local stack', () => {
  test('without a token from npm start, they say where they looked', async () => {
    const result = await cli('retrain', ['--url', 'http://127.0.0.1:9']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no operator token at \.data\/local-token: is `npm start` running from this folder\?/);
  });

  test('when nothing answers, they say so and ask whether npm start is running', async () => {
    await mkdir(path.join(cwd, '.data'), { recursive: true });
    await writeFile(path.join(cwd, '.data', 'local-token'), 'a-token\n');
    const closed = createServer().listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const result = await cli('promote', [VERSION, '--url', `http://127.0.0.1:${port}`]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*\\. Is \`npm start\` running\\?`),
    );
  });
});
