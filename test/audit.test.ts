/**
 * The CI's advisory check (`npm run audit:runtime`) with the real npm against
 * a registry on 127.0.0.1 that answers npm's bulk advisory request as told
 * (and serves the metadata npm then reads):
 * a high advisory fails the check, a moderate one does not, and an endpoint
 * that refuses (as this machine's registry proxy does, with 405) is a notice.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { runScript, type ScriptResult } from './support/cli.ts';
import { repoRoot } from './support/env.ts';

let registry: Server;
let registryUrl: string;
let answer: { status: number; body: unknown };
let asked: Record<string, string[]> = {};

before(async () => {
  registry = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (request.method === 'GET') {
      // npm reads the flagged package's metadata to tell which installed versions the advisory covers.
      const name = decodeURIComponent(request.url!.slice(1));
      const version = JSON.parse(await readFile(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')).version;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, versions: { [version]: { name, version } } }));
      return;
    }
    if (request.url === '/-/npm/v1/security/advisories/bulk') {
      asked = JSON.parse((request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString());
    }
    response.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.status === 200 ? JSON.stringify(answer.body) : '');
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/`;
});
after(() => registry.close());

const audit = (): Promise<ScriptResult> => runScript('scripts/audit.ts', ['--registry', registryUrl]);

let advisoryId = Date.now();

/** A fresh id each time: npm caches what it computed for an advisory id. */
function advisory(severity: string) {
  return { jimp: [{ id: ++advisoryId, url: 'https://github.com/advisories/GHSA-test-0000-0000', title: 'Test advisory', severity, vulnerable_versions: '<99.0.0', cwe: [], cvss: {} }] };
}

describe('npm run audit:runtime', () => {
  test('asks about runtime dependencies only', async () => {
    answer = { status: 200, body: {} };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    assert.ok(asked.jimp, 'jimp is a runtime dependency');
    assert.equal(asked.typescript, undefined, 'typescript is a dev dependency');
    assert.match(result.stdout, /no high or critical advisories in runtime dependencies \(0 of lower severity\)/);
  });

  test('a high advisory fails it, naming the package and the advisory', async () => {
    answer = { status: 200, body: advisory('high') };
    const result = await audit();
    assert.equal(result.code, 1);
    assert.match(result.stderr, /npm audit: high: jimp .*Test advisory https:\/\/github\.com\/advisories\/GHSA-test-0000-0000/);
  });

  test('a moderate advisory is counted but does not fail it', async () => {
    answer = { status: 200, body: advisory('moderate') };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /no high or critical advisories in runtime dependencies \([1-9]\d* of lower severity\)/);
  });

  test('an audit endpoint that refuses is reported as not checked, without failing', async () => {
    answer = { status: 405, body: '' };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^NOTICE: npm audit could not get advisories \(405 .*\); runtime dependencies were NOT checked\./);
  });
});
