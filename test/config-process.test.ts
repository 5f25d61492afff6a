/**
 * A setting as each entry point meets it: `npm run train` and `npm start`
 * refuse a bad one in one line before doing anything, the predict Lambda's
 * cold start fails with the ConfigError, and LOG_LEVEL=DEBUG (any case) logs
 * debug lines.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { runScript } from './support/cli.ts';
import { repoRoot } from './support/env.ts';

/** Only what the test sets: nothing of the caller's environment leaks in. */
const env = (extra: Record<string, string>) => ({
  PATH: process.env.PATH,
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  ...extra,
});

describe('command-line entry points refuse a bad setting in one line', () => {
  const cases: { script: string; set: Record<string, string>; line: string }[] = [
    {
      script: 'functions/train/main.ts',
      set: { LOG_LEVEL: 'verbose' },
      line: 'LOG_LEVEL must be one of debug, info, warn, error; got "verbose"',
    },
    {
      script: 'scripts/local.ts',
      set: { LOG_LEVEL: 'verbose' },
      line: 'LOG_LEVEL must be one of debug, info, warn, error; got "verbose"',
    },
    {
      script: 'functions/train/main.ts',
      set: { TFJS_BACKEND: 'webgl' },
      line: 'TFJS_BACKEND must be one of node, wasm, cpu; got "webgl"',
    },
    {
      script: 'scripts/local.ts',
      set: { PORT: '70000' },
      line: 'PORT must be a whole number from 0 to 65535; got "70000"',
    },
  ];
  for (const { script, set, line } of cases) {
    // --help would print the usage and exit 0: the setting is refused before the arguments are even read.
    test(`${script} with ${JSON.stringify(set)} exits 1 saying so`, async () => {
      const result = await runScript(script, ['--help'], { env: env(set) });
      assert.deepEqual(result, { code: 1, stdout: '', stderr: `invalid configuration: ${line}\n` });
    });
  }

  test('npm start refuses a bad --port in one line too, without a stack', async () => {
    const result = await runScript('scripts/local.ts', ['--port', '3000.5'], { env: env({}) });
    assert.deepEqual(result, {
      code: 1,
      stdout: '',
      stderr: 'npm start failed: --port must be a whole number from 0 to 65535; got "3000.5"\n',
    });
  });
});

/** The predict handler's process (test/support/predict-process.ts) until it listens or exits. */
async function predictProcess(
  extra: Record<string, string>,
): Promise<{ listening: boolean; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), 'test/support/predict-process.ts'], {
    cwd: repoRoot,
    // Nothing is fetched before the first request: the endpoint is never contacted.
    env: env({ BUCKET: 'digitnet-test', S3_ENDPOINT: 'http://127.0.0.1:9', ...extra }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const exited = once(child, 'exit');
  const listening = await Promise.race([once(child.stdout, 'data').then(() => true), exited.then(() => false)]);
  if (listening) child.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  return { listening, code, stderr };
}

const debugLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: string; message: string })
    .filter((entry) => entry.level === 'debug');

describe('LOG_LEVEL in the predict function', () => {
  test('LOG_LEVEL=DEBUG logs debug lines: the configuration read at cold start, without the S3 secret', async () => {
    const cold = await predictProcess({
      LOG_LEVEL: 'DEBUG',
      S3_ACCESS_KEY_ID: 'LOCALKEY',
      S3_SECRET_ACCESS_KEY: 'the-secret',
    });
    assert.equal(cold.listening, true, cold.stderr);
    assert.deepEqual(
      debugLines(cold.stderr).map((entry) => entry.message),
      ['configuration'],
    );
    assert.ok(!cold.stderr.includes('the-secret'), cold.stderr);
  });

  test('LOG_LEVEL=info logs no debug line', async () => {
    const cold = await predictProcess({ LOG_LEVEL: 'info' });
    assert.equal(cold.listening, true, cold.stderr);
    assert.deepEqual(debugLines(cold.stderr), []);
  });

  test('LOG_LEVEL=verbose fails the cold start with the ConfigError', async () => {
    const cold = await predictProcess({ LOG_LEVEL: 'verbose' });
    assert.equal(cold.listening, false);
    assert.equal(cold.code, 1);
    assert.match(cold.stderr, /ConfigError: LOG_LEVEL must be one of debug, info, warn, error; got "verbose"/);
  });
});
