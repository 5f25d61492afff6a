import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { childProcesses } from '../scripts/bench/local-stack.ts';
import { runScript, type ScriptResult } from './support/cli.ts';
import { mnistDir, repoRoot, tempDir } from './support/env.ts';

const PORT = 39_000 + Math.floor(Math.random() * 1000);
const url = `http://127.0.0.1:${PORT}`;
let dataDir: string;
let env: NodeJS.ProcessEnv;

function start(overrides: NodeJS.ProcessEnv = {}): {
  child: ChildProcess;
  ready: Promise<void>;
  stderr: () => string;
  stdout: () => string;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/local.ts', '--epochs', '1'], {
    cwd: repoRoot,
    env: { ...env, ...overrides },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk;
      if (chunk.toString().includes('"event":"ready"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}: ${stderr.slice(-2000)}`)));
  });
  return { child, ready, stderr: () => stderr, stdout: () => stdout };
}

const cli = (script: string, args: string[]): Promise<ScriptResult> => runScript(`scripts/${script}.ts`, args, { env });

/** Child processes of `pid` running the server worker. */
async function serverProcesses(pid: number): Promise<number[]> {
  const workers: number[] = [];
  for (const child of await childProcesses(pid)) {
    // A child that ended since it was listed has no cmdline to read.
    const cmdline = await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('worker.ts')) workers.push(child);
  }
  return workers;
}

async function servingVersion(): Promise<string> {
  return (await (await fetch(`${url}/health`)).json()).modelVersion;
}

/**
 * Waits until every server process answers with `version`. Each one re-checks
 * the pointer on its own, when a request arrives, so for a moment after a
 * promotion they can disagree — as Lambda containers do.
 */
async function waitUntilServing(version: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  let agreeing = 0;
  while (agreeing < 8 && Date.now() < deadline) {
    agreeing = (await servingVersion()) === version ? agreeing + 1 : 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(agreeing, 8, `the server did not settle on ${version}`);
}

let stack: ReturnType<typeof start>;
before(async () => {
  dataDir = await tempDir('digitnet-local-');
  env = {
    ...process.env,
    MNIST_DIR: mnistDir,
    DATA_DIR: dataDir,
    PORT: String(PORT),
    MIN_ACCURACY: '0.9',
    MODEL_REFRESH_SECONDS: '1',
    BUCKET: '',
    S3_ENDPOINT: '',
  };
  stack = start();
  await stack.ready;
});
after(() => {
  if (stack.child.exitCode === null) stack.child.kill('SIGKILL');
});

describe('npm start', () => {
  let first: string;

  test('trains a first model, then serves the page and predictions on 127.0.0.1', async () => {
    assert.match(stack.stderr(), /No model is serving yet: training one/);
    assert.match(stack.stderr(), /digitnet is up: http:\/\/127\.0\.0\.1:\d+/);
    first = await servingVersion();
    assert.match(first, /^\d{8}T\d{6}Z-mlp$/);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /digitnet/);
  });

  test('the token and the embedded S3’s folder and key pair are owner-only, and that S3 refuses an unsigned request', async () => {
    const mode = async (file: string) => (await stat(`${dataDir}/${file}`)).mode & 0o777;
    assert.deepEqual(
      [await mode('local-token'), await mode('s3'), await mode('s3/credentials.json')],
      [0o600, 0o700, 0o600],
    );
    const ready = JSON.parse(
      stack
        .stdout()
        .split('\n')
        .find((line) => line.includes('"event":"ready"'))!,
    );
    // node:http, not fetch: fetch adds Sec-Fetch-Mode, which is refused as a browser's before the signature is looked at.
    const status = await new Promise<number | undefined>((resolve, reject) =>
      http
        .get(`${ready.s3}/${ready.bucket}/models/latest.json`, (response) => resolve(response.resume().statusCode))
        .on('error', reject),
    );
    assert.equal(status, 403);
  });

  test('operator routes refuse requests without the token printed at start-up', async () => {
    const response = await fetch(`${url}/train`, { method: 'POST', body: JSON.stringify({ arch: 'mlp', epochs: 1 }) });
    assert.equal(response.status, 401);
    assert.match((await response.json()).error.message, /Bearer/);
    const wrong = await fetch(`${url}/promote`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope' },
      body: '{}',
    });
    assert.equal(wrong.status, 401);
  });

  test('npm run retrain --wait trains in a child process, promotes, and the server picks the new version up', async () => {
    const result = await cli('retrain', ['--arch', 'mlp', '--epochs', '1', '--wait', '--url', url]);
    assert.equal(result.code, 0, result.stderr);
    const final = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    assert.equal(final.status, 'SUCCEEDED', result.stdout);
    assert.equal(final.model?.serving, true, result.stdout);
    assert.match(result.stderr, /RUNNING/);
    assert.match(result.stderr, /promoted and serving/);
    await waitUntilServing(final.model.version);
  });

  test('npm run models marks the serving version and npm run promote rolls back', async () => {
    const listed = await cli('models', ['--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const versions = JSON.parse(listed.stdout);
    assert.equal(versions.length, 2);
    assert.equal(versions.find((v: { serving: boolean }) => v.serving).version, versions[1].version);
    const rollback = await cli('promote', [first, '--url', url]);
    assert.equal(rollback.code, 0, rollback.stderr);
    await waitUntilServing(first);
  });

  test('serves from one process per core and replaces a server process that dies', async () => {
    const workers = await serverProcesses(stack.child.pid!);
    assert.equal(workers.length, availableParallelism());
    process.kill(workers[0]!, 'SIGKILL');
    const deadline = Date.now() + 30_000;
    let replaced: number[] = [];
    while (Date.now() < deadline) {
      replaced = await serverProcesses(stack.child.pid!);
      if (replaced.length === workers.length && !replaced.includes(workers[0]!)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(replaced.length, workers.length);
    assert.ok(!replaced.includes(workers[0]!));
    assert.match(stack.stderr(), /server worker died; starting another/);
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${url}/health`)).status, 200);
  });

  test('npm run promote refuses an unknown version with a clear message', async () => {
    const result = await cli('promote', ['20990101T000000Z-mlp', '--url', url]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /not promoted: 404: .*does not exist/);
  });

  test('npm run retrain --wait says why the quality gate refused a version, and the serving model stays', async () => {
    const serving = await servingVersion();
    // One epoch in batches of 1024 is a few dozen steps: far below the serving model.
    const result = await cli('retrain', [
      '--arch',
      'mlp',
      '--epochs',
      '1',
      '--batch-size',
      '1024',
      '--wait',
      '--url',
      url,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const final = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    assert.equal(final.model.serving, false, result.stdout);
    assert.equal(final.model.gate.passed, false);
    assert.match(
      result.stderr,
      new RegExp(
        `${final.model.version}: test accuracy [\\d.]+% — stored but NOT promoted, because test accuracy .* below .*\`npm run promote -- ${final.model.version} --url ${url}\` serves it anyway`,
      ),
    );
    assert.equal(await servingVersion(), serving);
    const listed = await cli('models', []);
    assert.match(listed.stdout, new RegExp(`^  ${final.model.version} +mlp +[\\d.]+% +— +\\S+ +refused$`, 'm'));
  });

  test('training jobs run one at a time: a second one waits as RUNNABLE until the first has finished', async () => {
    const token = (await readFile(`${dataDir}/local-token`, 'utf8')).trim();
    const operator = async (method: string, route: string, body?: unknown) =>
      (
        await fetch(`${url}${route}`, {
          method,
          headers: { authorization: `Bearer ${token}` },
          body: body === undefined ? undefined : JSON.stringify(body),
        })
      ).json();
    // Batches of 1024 for one epoch: quick, and refused by the gate, so the serving model stays.
    const request = { arch: 'mlp', epochs: 1, batchSize: 1024 };
    const first = (await operator('POST', '/train', request)).jobId;
    const second = (await operator('POST', '/train', request)).jobId;
    const waiting = await operator('GET', `/train/${second}`);
    assert.equal(waiting.status, 'RUNNABLE');
    assert.equal(waiting.statusReason, `waiting for job ${first} to finish`);
    const deadline = Date.now() + 120_000;
    let done: { startedAt: string; stoppedAt: string; status: string }[] = [];
    while (Date.now() < deadline) {
      done = await Promise.all([operator('GET', `/train/${first}`), operator('GET', `/train/${second}`)]);
      if (done.every((job) => job.status === 'SUCCEEDED' || job.status === 'FAILED')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.deepEqual(
      done.map((job) => job.status),
      ['SUCCEEDED', 'SUCCEEDED'],
    );
    assert.ok(
      Date.parse(done[1]!.startedAt) >= Date.parse(done[0]!.stoppedAt),
      'the second started after the first stopped',
    );
  });

  test('the operator token is printed once at start-up and never logged, though every request above carried it', async () => {
    const token = (await readFile(`${dataDir}/local-token`, 'utf8')).trim();
    assert.equal(stack.stderr().split(token).length - 1, 1, 'only in the start-up banner');
    assert.ok(!stack.stdout().includes(token));
    assert.match(
      stack.stderr(),
      /"path":"\/promote".*"requestId"|"requestId".*"path":"\/promote"/,
      'operator requests are logged, with their request id',
    );
  });

  test('a second npm start on the same data folder refuses at once, naming the running one, and leaves its token alone', async () => {
    const tokenFile = `${dataDir}/local-token`;
    const token = await readFile(tokenFile, 'utf8');
    await assert.rejects(
      start().ready,
      new RegExp(`exited with 1: npm start failed: another npm start \\(pid ${stack.child.pid}\\) is using ${dataDir}`),
    );
    assert.equal(await readFile(tokenFile, 'utf8'), token);
    assert.equal((await fetch(`${url}/health`)).status, 200);
  });

  test('a busy port is refused before any training starts', async () => {
    const other = start({ DATA_DIR: await tempDir('digitnet-local-') });
    await assert.rejects(
      other.ready,
      new RegExp(`exited with 1: npm start failed: port ${PORT} on 127\\.0\\.0\\.1 is in use`),
    );
    assert.doesNotMatch(other.stderr() + other.stdout(), /training|epoch/i);
  });

  test('Ctrl-C stops cleanly, and a second start reuses the stored model without training', async () => {
    stack.child.kill('SIGINT');
    const [code] = await once(stack.child, 'exit');
    assert.equal(code, 0);
    // As an older version could leave it: the restart must not keep a token file others can read.
    await chmod(`${dataDir}/local-token`, 0o644);
    const second = start();
    stack = second;
    await second.ready;
    assert.equal((await stat(`${dataDir}/local-token`)).mode & 0o777, 0o600);
    assert.doesNotMatch(second.stderr(), /training one/);
    assert.equal(await servingVersion(), first);
  });
});
