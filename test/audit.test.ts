/**
 * The CI's advisory check (`npm run audit:runtime`) with the real npm against
 * a registry on 127.0.0.1 that answers npm's bulk advisory requests as told
 * (and serves the metadata npm then reads). Two sets are judged: runtime
 * dependencies, and what `npm start` runs (tsx, s3rver and their trees). A
 * high advisory in either fails the check unless allow-listed for s3rver's
 * tree, a moderate one does not, a dev tool npm start does not run is not
 * judged, and an endpoint that refuses (as this machine's registry proxy does,
 * with 405) is a notice, per set, that nothing was audited.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
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
let asked: Record<string, string[]>[] = [];

before(async () => {
  registry = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    if (request.method === 'GET') {
      // npm reads the flagged package's metadata to tell which installed versions the advisory covers.
      const name = decodeURIComponent(request.url!.slice(1));
      const version = JSON.parse(
        await readFile(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8'),
      ).version;
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ name, versions: { [version]: { name, version } } }));
      return;
    }
    if (request.url === '/-/npm/v1/security/advisories/bulk') {
      asked.push(JSON.parse((request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString()));
    }
    response
      .writeHead(answer.status, { 'content-type': 'application/json' })
      .end(answer.status === 200 ? JSON.stringify(answer.body) : '');
  });
  registry.listen(0, '127.0.0.1');
  await once(registry, 'listening');
  registryUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/`;
});
after(() => registry.close());

function audit(): Promise<ScriptResult> {
  asked = [];
  return runScript('scripts/audit.ts', ['--registry', registryUrl]);
}

let advisoryId = Date.now();

/** A fresh id each time: npm caches what it computed for an advisory id. */
function advisory(severity: string, name = 'jpeg-js', ghsa = 'GHSA-test-0000-0000') {
  const url = `https://github.com/advisories/${ghsa}`;
  return {
    [name]: [
      { id: ++advisoryId, url, title: 'Test advisory', severity, vulnerable_versions: '<99.0.0', cwe: [], cvss: {} },
    ],
  };
}

const LOCAL_STACK = /the local stack \(npm start: tsx, s3rver and their dependencies\)/;

describe('npm run audit:runtime', () => {
  test('asks about runtime dependencies, then about everything to judge what npm start runs', async () => {
    answer = { status: 200, body: {} };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    const [runtime, all] = asked;
    assert.ok(runtime?.['jpeg-js'], 'jpeg-js is a runtime dependency');
    assert.equal(runtime.typescript, undefined, 'typescript is a dev dependency');
    assert.ok(all?.s3rver && all.dicer && all.tsx, 's3rver, its dependencies and tsx are asked about');
    assert.match(result.stdout, /no high or critical advisories in runtime dependencies \(0 of lower severity\)/);
    assert.match(
      result.stdout,
      new RegExp(`no high or critical advisories in ${LOCAL_STACK.source} \\(0 of lower severity\\)`),
    );
  });

  test('every dev dependency that npm start runs or loads is in the audited local stack', async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8'));
    const under = async (dir: string) =>
      (await readdir(path.join(repoRoot, dir), { recursive: true })).map((file) => path.join(dir, file));
    const sources = [...(await under('functions')), ...(await under('scripts/local')), 'scripts/local.ts'].filter(
      (file) => file.endsWith('.ts'),
    );
    const code = (await Promise.all(sources.map((file) => readFile(path.join(repoRoot, file), 'utf8')))).join('\n');
    const runner = pkg.scripts.start.split(' ')[0];
    const quoted = (name: string) => new RegExp(`['"]${name.replace(/[/.]/g, '\\$&')}(/[^'"]*)?['"]`).test(code);
    const loaded = Object.keys(pkg.devDependencies).filter((name) => name === runner || quoted(name));
    assert.ok(loaded.includes('s3rver'), 'the embedded S3 is found among what npm start loads');
    answer = { status: 200, body: {} };
    const result = await audit();
    const audited = /npm start: ([^)]*) and their dependencies/.exec(result.stdout)?.[1]?.split(', ');
    assert.deepEqual(audited?.sort(), loaded.sort());
  });

  test('a high advisory in a runtime dependency fails it, naming the package and the advisory', async () => {
    answer = { status: 200, body: advisory('high') };
    const result = await audit();
    assert.equal(result.code, 1);
    const line =
      /npm audit \(runtime dependencies\): high: jpeg-js .*Test advisory https:\/\/github\.com\/advisories\/GHSA-test-0000-0000/;
    assert.match(result.stderr, line);
  });

  test('a moderate advisory is counted but does not fail it', async () => {
    answer = { status: 200, body: advisory('moderate') };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /no high or critical advisories in runtime dependencies \([1-9]\d* of lower severity\)/,
    );
  });

  test("a high advisory in what npm start runs (s3rver's tree) fails it", async () => {
    answer = { status: 200, body: advisory('high', 'busboy') };
    const result = await audit();
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`npm audit \\(${LOCAL_STACK.source}\\): high: busboy .*GHSA-test-0000-0000`),
    );
  });

  test("an allow-listed advisory in s3rver's tree is printed with its reason and does not fail it", async () => {
    answer = { status: 200, body: advisory('high', 'dicer', 'GHSA-wm7h-9275-46v2') };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    const line =
      /allowed high: dicer .*GHSA-wm7h-9275-46v2: s3rver parses multipart form POSTs .* the local S3 refuses those/;
    assert.match(result.stdout, line);
  });

  test('the allow-listed advisory id on any other package still fails it', async () => {
    answer = { status: 200, body: advisory('high', 'busboy', 'GHSA-wm7h-9275-46v2') };
    const result = await audit();
    assert.equal(result.code, 1);
    assert.match(result.stderr, /high: busboy .*GHSA-wm7h-9275-46v2/);
  });

  test('a high advisory in a dev tool npm start does not run is not judged', async () => {
    answer = { status: 200, body: advisory('high', 'typescript') };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
  });

  test('an audit endpoint that refuses is reported, set by set, as NOTHING audited, without failing', async () => {
    answer = { status: 405, body: '' };
    const result = await audit();
    assert.equal(result.code, 0, result.stderr);
    const notices = result.stdout.trim().split('\n');
    assert.equal(notices.length, 2);
    const notice = '^NOTICE: npm audit could not get advisories \\(405 .*\\); NOTHING was audited in';
    assert.match(notices[0]!, new RegExp(`${notice} runtime dependencies\\.$`));
    assert.match(notices[1]!, new RegExp(`${notice} ${LOCAL_STACK.source}\\.$`));
  });
});
