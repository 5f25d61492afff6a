/**
 * The pieces every command-line tool shares (scripts/cli/): where requests
 * go and how operator requests authenticate, the one reader of
 * cdk.outputs.json, and how a failure becomes a line and an exit code.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describe, test } from 'node:test';
import { ConfigError } from '#lib/errors';
import { operatorTarget, type OperatorTarget } from '../scripts/cli/operator.ts';
import { stackOutput } from '../scripts/cli/outputs.ts';
import { CliError, describeFailure } from '../scripts/cli/run.ts';
import { tempDir } from './support/env.ts';

const API = 'https://a1b2c3d4e5.execute-api.eu-west-3.amazonaws.com';
const TOKEN_FILE = path.join('.data', 'local-token');

interface Case {
  what: string;
  flags?: { url?: string; deployed?: boolean };
  env?: Record<string, string>;
  deployedUrl?: string;
  target: OperatorTarget;
}

const token = (url: string, tokenFile = TOKEN_FILE): OperatorTarget => ({ url, auth: 'token', tokenFile });
const sigv4 = (url: string): OperatorTarget => ({ url, auth: 'sigv4' });

const cases: Case[] = [
  { what: 'nothing given: the local stack on port 3000, with its token', target: token('http://127.0.0.1:3000') },
  {
    what: 'PORT and DATA_DIR move the local stack and its token',
    env: { PORT: '4100', DATA_DIR: '/srv/digitnet' },
    target: token('http://127.0.0.1:4100', '/srv/digitnet/local-token'),
  },
  { what: '--url localhost', flags: { url: 'http://localhost:3000/' }, target: token('http://localhost:3000') },
  {
    what: '--url LOCALHOST, which is the same name',
    flags: { url: 'http://LOCALHOST:3000' },
    target: token('http://LOCALHOST:3000'),
  },
  {
    what: '--url of another 127/8 address',
    flags: { url: 'http://127.1.2.3:3000' },
    target: token('http://127.1.2.3:3000'),
  },
  { what: '--url [::1]', flags: { url: 'http://[::1]:3000' }, target: token('http://[::1]:3000') },
  {
    what: 'DIGITNET_URL on this machine',
    env: { DIGITNET_URL: 'http://127.0.0.1:4000' },
    target: token('http://127.0.0.1:4000'),
  },
  {
    what: 'DIGITNET_URL of the deployed API (the bug: retrain sent the token)',
    env: { DIGITNET_URL: `${API}/` },
    target: sigv4(API),
  },
  {
    what: '--url beats DIGITNET_URL',
    flags: { url: 'http://127.0.0.1:5000' },
    env: { DIGITNET_URL: API },
    target: token('http://127.0.0.1:5000'),
  },
  { what: '--url of the deployed API', flags: { url: API }, target: sigv4(API) },
  {
    what: 'a name that starts like localhost',
    flags: { url: 'http://localhost.evil.net:3000' },
    target: sigv4('http://localhost.evil.net:3000'),
  },
  {
    what: 'a name that starts like 127.0.0.1',
    flags: { url: 'http://127.0.0.1.nip.io:3000' },
    target: sigv4('http://127.0.0.1.nip.io:3000'),
  },
  {
    what: 'localhost as the user part of another host',
    flags: { url: 'http://localhost@evil.net' },
    target: sigv4('http://localhost@evil.net'),
  },
  {
    what: 'localhost. with its root dot, which a resolver may send elsewhere',
    flags: { url: 'http://localhost.:3000' },
    target: sigv4('http://localhost.:3000'),
  },
  {
    what: '0.0.0.0, which is not a loopback address',
    flags: { url: 'http://0.0.0.0:3000' },
    target: sigv4('http://0.0.0.0:3000'),
  },
  {
    what: '--deployed: the ApiUrl of cdk.outputs.json',
    flags: { deployed: true },
    deployedUrl: `${API}/`,
    target: sigv4(API),
  },
  {
    what: '--deployed signs even when that API answers on 127.0.0.1',
    flags: { deployed: true },
    deployedUrl: 'http://127.0.0.1:9000/',
    target: sigv4('http://127.0.0.1:9000'),
  },
  {
    what: '--deployed with --url signs requests to that URL',
    flags: { deployed: true, url: 'http://127.0.0.1:9000' },
    target: sigv4('http://127.0.0.1:9000'),
  },
  {
    what: '--deployed with DIGITNET_URL signs requests to that URL',
    flags: { deployed: true },
    env: { DIGITNET_URL: API },
    target: sigv4(API),
  },
];

describe('operatorTarget', () => {
  for (const { what, flags = {}, env = {}, deployedUrl, target } of cases) {
    test(`${what}: ${target.auth} to ${target.url}`, async () => {
      const outputs = async () => {
        assert.ok(deployedUrl, 'cdk.outputs.json was read without --deployed needing it');
        return deployedUrl;
      };
      assert.deepEqual(await operatorTarget(flags, { env, deployedUrl: outputs }), target);
    });
  }

  const refused: [string, { url?: string }, Record<string, string>, RegExp][] = [
    [
      'a URL without its scheme',
      { url: '127.0.0.1:3000' },
      {},
      /^--url must be an http\(s\) URL like http:\/\/127\.0\.0\.1:3000; got "127\.0\.0\.1:3000"$/,
    ],
    ['host:port, which parses as a scheme', { url: 'localhost:3000' }, {}, /^--url must be an http\(s\) URL/],
    ['another protocol', { url: 'ftp://127.0.0.1/' }, {}, /^--url must be an http\(s\) URL/],
    [
      'a DIGITNET_URL that is a file',
      {},
      { DIGITNET_URL: 'file:///etc/passwd' },
      /^DIGITNET_URL must be an http\(s\) URL.*got "file:\/\/\/etc\/passwd"$/,
    ],
  ];
  for (const [what, flags, env, message] of refused) {
    test(`refuses ${what}, naming where it came from`, async () => {
      await assert.rejects(
        operatorTarget(flags, { env }),
        (error: unknown) => error instanceof CliError && message.test(error.message),
      );
    });
  }
});

describe('stackOutput', () => {
  async function outputsFile(text: string): Promise<string> {
    const file = path.join(await tempDir('digitnet-outputs-'), 'cdk.outputs.json');
    await writeFile(file, text);
    return file;
  }

  test('reads each output from the first stack that has it', async () => {
    const file = await outputsFile(
      JSON.stringify({
        'Digitnet-dev': { BucketName: 'digitnet-dev-bucket' },
        'Digitnet-prod': { ApiUrl: `${API}/`, BucketName: 'p' },
      }),
    );
    assert.equal(await stackOutput('ApiUrl', { file }), `${API}/`);
    assert.equal(await stackOutput('BucketName', { file }), 'digitnet-dev-bucket');
  });

  test('without the file, says to deploy first, and what else the user can do', async () => {
    const file = path.join(await tempDir('digitnet-undeployed-'), 'cdk.outputs.json');
    await assert.rejects(stackOutput('ApiUrl', { file, orElse: 'pass --url' }), {
      name: 'CliError',
      message: `--deployed needs ${file}: run \`npm run deploy\` first, or pass --url`,
    });
  });

  test('a file that is not JSON, or lacks the output, is named as the problem', async () => {
    await assert.rejects(stackOutput('ApiUrl', { file: await outputsFile('{"Digitnet-dev": {') }), {
      name: 'CliError',
      message: /is not valid JSON .*run `npm run deploy` again$/,
    });
    const file = await outputsFile(JSON.stringify({ 'Digitnet-dev': { ApiUrl: API }, Other: null }));
    await assert.rejects(stackOutput('BucketName', { file }), {
      name: 'CliError',
      message: `${file} has no BucketName output: run \`npm run deploy\` again`,
    });
  });
});

describe('describeFailure', () => {
  test('an error the user can act on is its message alone, with its exit code (1 unless a usage error)', () => {
    assert.deepEqual(
      describeFailure(new CliError('cannot reach http://127.0.0.1:3000: ECONNREFUSED. Is `npm start` running?')),
      {
        text: 'cannot reach http://127.0.0.1:3000: ECONNREFUSED. Is `npm start` running?',
        exitCode: 1,
      },
    );
    assert.deepEqual(describeFailure(new CliError('no version given', 2)), { text: 'no version given', exitCode: 2 });
    const config = 'S3_ENDPOINT must be an http(s) URL; got "x"';
    assert.deepEqual(describeFailure(new ConfigError(config)), { text: config, exitCode: 1 });
  });

  test('an unknown flag is a usage error: its message and exit code 2', () => {
    let thrown: unknown;
    try {
      parseArgs({ args: ['--arhc', 'cnn'], options: { arch: { type: 'string' } } });
    } catch (error) {
      thrown = error;
    }
    assert.deepEqual(describeFailure(thrown), { text: "Unknown option '--arhc'", exitCode: 2 });
  });

  test('anything else is a bug to report: its stack, and exit code 1', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'version')");
    assert.deepEqual(describeFailure(bug), { text: bug.stack, exitCode: 1 });
    assert.deepEqual(describeFailure('a thrown string'), { text: 'a thrown string', exitCode: 1 });
  });
});
