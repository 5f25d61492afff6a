import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertPortFree, claimDataDir, LOCK_FILE, PreflightError } from '../scripts/local/preflight.ts';
import { tempDir } from './support/env.ts';

describe('claimDataDir', () => {
  test('writes this process id into a new folder’s lock', async () => {
    const dir = path.join(await tempDir(), 'nested', '.data');
    await claimDataDir(dir);
    assert.equal(await readFile(path.join(dir, LOCK_FILE), 'utf8'), String(process.pid));
  });

  test('refuses a folder locked by a process that is running', async (t) => {
    const dir = await tempDir();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)']);
    t.after(() => other.kill());
    await writeFile(path.join(dir, LOCK_FILE), String(other.pid));
    await assert.rejects(claimDataDir(dir), (error: Error) => error instanceof PreflightError && error.message.includes(`pid ${other.pid}`));
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
    await assert.rejects(assertPortFree('127.0.0.1', port), new RegExp(`^PreflightError: port ${port} on 127\\.0\\.0\\.1 is in use .*--port$`));
  });

  test('says why an address cannot be bound', async () => {
    await assert.rejects(assertPortFree('192.0.2.1', 4000), /^PreflightError: cannot listen on 192\.0\.2\.1:4000: .*EADDRNOTAVAIL/);
  });
});
