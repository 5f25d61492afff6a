/**
 * `npm run deploy` up to the point where it hands over to `cdk deploy`, which
 * cannot run here (no AWS account, no Docker engine): stand-ins for `docker`
 * and `cdk` on PATH record how they were called and answer as told.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { runScript, type ScriptResult } from './support/cli.ts';
import { tempDir } from './support/env.ts';

let bin: string;

/** An executable that appends its arguments to `<name>.calls` and exits with $<NAME>_EXIT (default 0). */
async function standIn(name: string): Promise<void> {
  const file = path.join(bin, name);
  await writeFile(file, `#!/bin/sh\necho "$@" >> "${file}.calls"\nexit "\${${name.toUpperCase()}_EXIT:-0}"\n`);
  await chmod(file, 0o755);
}

const calls = (name: string) =>
  readFile(path.join(bin, `${name}.calls`), 'utf8').then(
    (text) => text.trim().split('\n'),
    () => [],
  );

async function deploy(args: string[], env: Record<string, string> = {}): Promise<ScriptResult> {
  const cwd = await tempDir('digitnet-deploy-');
  return runScript('scripts/deploy.ts', args, { cwd, env: { PATH: `${bin}:/usr/bin:/bin`, HOME: cwd, ...env } });
}

before(async () => {
  bin = await tempDir('digitnet-bin-');
  await standIn('docker');
  await standIn('cdk');
});

describe('npm run deploy', () => {
  test('--help lists every setting with its default and calls nothing', async () => {
    const callsBefore = (await calls('cdk')).length + (await calls('docker')).length;
    const result = await deploy(['--help']);
    assert.equal(result.code, 0, result.stderr);
    const settings = [
      'stage=dev',
      'predictMemoryMiB=1769',
      'trainVcpu=4',
      'trainMemoryGiB=8',
      'weeklyRetrain=false',
      'corsOrigins=*',
      'alarmApi5xxPercent=5',
      'lowConfidenceThreshold=0.6',
      'rolloutMinSamples=500',
      'rolloutTolerance=0.01',
    ];
    for (const setting of [...settings, 'predictReservedConcurrency=50', 'retrainReservedConcurrency=2']) {
      assert.match(result.stdout, new RegExp(`-c ${setting.replace('*', '\\*')}\\n`));
    }
    assert.match(result.stdout, /-c alarmEmail=ADDRESS /);
    assert.doesNotMatch(result.stdout, /\[object Object\]|rolloutPolicy=/);
    assert.match(result.stdout, /cdk bootstrap/);
    assert.equal((await calls('cdk')).length + (await calls('docker')).length, callsBefore);
  });

  test('runs cdk deploy with the outputs file and approval for broadened permissions, passing the caller’s options on', async () => {
    const result = await deploy(['-c', 'stage=prod', '--profile', 'ops']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal((await calls('docker')).at(-1), 'info');
    assert.equal(
      (await calls('cdk')).at(-1),
      'deploy --require-approval broadening --outputs-file cdk.outputs.json -c stage=prod --profile ops',
    );
    assert.match(result.stderr, /outputs are in cdk\.outputs\.json.*\n.*npm run retrain -- --deployed/);
  });

  test('leaves the approval level to a caller who sets one', async () => {
    await deploy(['--require-approval', 'never']);
    assert.equal((await calls('cdk')).at(-1), 'deploy --outputs-file cdk.outputs.json --require-approval never');
  });

  test('exits with cdk’s status when the deploy fails', async () => {
    const result = await deploy([], { CDK_EXIT: '3' });
    assert.equal(result.code, 3);
    assert.doesNotMatch(result.stderr, /Deployed/);
  });

  test('refuses before cdk runs when the Docker engine is not running', async () => {
    const callsBefore = (await calls('cdk')).length;
    const result = await deploy([], { DOCKER_EXIT: '1' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^cannot deploy: docker is installed but its engine is not running\. .*start Docker/);
    assert.equal((await calls('cdk')).length, callsBefore);
  });

  test('names a missing builder, and CDK_DOCKER chooses the builder', async () => {
    const result = await deploy([], { CDK_DOCKER: 'podman' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^cannot deploy: podman was not found\./);
  });
});
