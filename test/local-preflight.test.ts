import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { writeOwnerOnly } from '#lib/owner-only';
import {
  assertPortFree,
  claimDataDir,
  exposureWarning,
  LOCK_FILE,
  PreflightError,
} from '../scripts/local/preflight.ts';
import { runScript } from './support/cli.ts';
import { mnistDir, tempDir } from './support/env.ts';

describe('claimDataDir', () => {
  test('writes this process id into a new folder’s lock', async () => {
    const dir = path.join(await tempDir(), 'nested', '.data');
    await claimDataDir(dir);
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), String(process.pid));
  });

  test('creates a new folder, and the folders above it that it makes, readable by their owner only', async () => {
    const parent = path.join(await tempDir(), 'nested');
    const dir = path.join(parent, '.data');
    await claimDataDir(dir);
    assert.equal((await stat(parent)).mode & 0o777, 0o700);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
  });

  test('refuses a folder locked by a process that is running', async (t) => {
    const dir = await tempDir();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    t.after(() => other.kill());
    await writeFile(path.join(dir, LOCK_FILE), String(other.pid));
    await assert.rejects(
      claimDataDir(dir),
      (error: Error) => error instanceof PreflightError && error.message.includes(`pid ${other.pid}`),
    );
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), String(other.pid), 'the lock is left alone');
  });

  test('takes over a lock whose process has ended', async () => {
    const dir = await tempDir();
    const ended = spawn(process.execPath, ['-e', '']);
    await once(ended, 'exit');
    await writeFile(path.join(dir, LOCK_FILE), String(ended.pid));
    await claimDataDir(dir);
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), String(process.pid));
  });

  test('takes over a lock that holds no process id', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, LOCK_FILE), 'garbage');
    await claimDataDir(dir);
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), String(process.pid));
  });
});

describe('assertPortFree', () => {
  test('passes for a free port and for port 0, and leaves nothing listening', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    await assertPortFree('127.0.0.1', port);
    await assertPortFree('127.0.0.1', 0);
    const again = createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  });

  test('names a port in use and how to choose another', async (t) => {
    const busy = createServer().listen(0, '127.0.0.1');
    await once(busy, 'listening');
    t.after(() => busy.close());
    const { port } = busy.address() as AddressInfo;
    await assert.rejects(
      assertPortFree('127.0.0.1', port),
      new RegExp(`^PreflightError: port ${port} on 127\\.0\\.0\\.1 is in use .*--port$`),
    );
  });

  test('says why an address cannot be bound', async () => {
    await assert.rejects(
      assertPortFree('192.0.2.1', 4000),
      /^PreflightError: cannot listen on 192\.0\.2\.1:4000: .*EADDRNOTAVAIL/,
    );
  });
});

describe('owner-only files', () => {
  test('a new file is written 0600', async () => {
    const file = path.join(await tempDir(), 'local-token');
    await writeOwnerOnly(file, 'secret\n');
    assert.equal(await readFile(file, 'utf8'), 'secret\n');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  test('a file that exists readable by others is rewritten and made 0600', async () => {
    const file = path.join(await tempDir(), 'local-token');
    await writeFile(file, 'old\n');
    await chmod(file, 0o644);
    await writeOwnerOnly(file, 'new\n');
    assert.equal(await readFile(file, 'utf8'), 'new\n');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });
});

describe('the --host warning', () => {
  test('is said for any address but loopback', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1']) assert.equal(exposureWarning(host), undefined, host);
    for (const host of ['0.0.0.0', '::', '192.168.1.20'])
      assert.match(
        exposureWarning(host)!,
        new RegExp(`^binding ${host.replace(/\./g, '\\.')} makes the service reachable from other machines`),
      );
  });

  /** npm start on a folder another live process holds: it stops at its preflight, before it binds or trains anything. */
  async function startOnTakenFolder(t: { after(fn: () => void): void }, args: string[]) {
    const dataDir = await tempDir();
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    t.after(() => owner.kill());
    await writeFile(path.join(dataDir, LOCK_FILE), String(owner.pid));
    const env = { ...process.env, DATA_DIR: dataDir, MNIST_DIR: mnistDir, BUCKET: '', S3_ENDPOINT: '' };
    return runScript('scripts/local.ts', [...args, '--port', '0'], { env });
  }

  test('npm start --host 0.0.0.0 prints it first, before a preflight refusal and without training', async (t) => {
    const result = await startOnTakenFolder(t, ['--host', '0.0.0.0']);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^WARNING: binding 0\.0\.0\.0 makes the service reachable from other machines\.\nnpm start failed: another npm start/,
    );
    assert.doesNotMatch(result.stderr + result.stdout, /training|epoch/i);
  });

  test('npm start on 127.0.0.1 prints no warning', async (t) => {
    const result = await startOnTakenFolder(t, []);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^npm start failed: another npm start/);
  });
});
